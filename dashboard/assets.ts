import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The page's script and style, bundled by esbuild from dashboard/page with its libraries: nothing from a CDN. */
export interface PageAssets {
  readonly js: string;
  readonly css: string;
}

/** The project's root: the nearest folder above this module that holds package.json (from source or dist/). */
function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('fanout dashboard: the project root (package.json) was not found');
    dir = up;
  }
  return dir;
}

/** Bundles the page in memory (about a second): uPlot, diff2html and the page's own code and CSS. */
export async function buildPage(): Promise<PageAssets> {
  const { build } = await import('esbuild');
  const root = projectRoot();
  const result = await build({
    entryPoints: [join(root, 'dashboard/page/main.ts')],
    bundle: true,
    minify: true,
    format: 'iife',
    target: 'es2022',
    write: false,
    outdir: join(root, '.dashboard-out'),
    logLevel: 'warning',
    legalComments: 'none',
  });
  const pick = (ext: string) => result.outputFiles.find((file) => file.path.endsWith(ext))?.text ?? '';
  return { js: pick('.js'), css: pick('.css') };
}
