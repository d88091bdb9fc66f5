// Builds the command line and the local worker process into plain JavaScript (dist/),
// so `npm start` starts in well under a second and Node gets Ctrl-C directly, with no
// TypeScript runner in between to relay it twice. Run by `npm start`; takes ~1 s.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { build } from 'esbuild';

const result = await build({
  entryPoints: { fanout: 'cli/fanout.ts', worker: 'shared/local/worker-process.ts' },
  outdir: 'dist',
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  format: 'esm',
  // Modules loaded on demand in chunks of their own: each command's (so `run` does not parse
  // the AWS clients of send and status) and the llm agent's (the Bedrock client, Octokit),
  // so a simulate worker starts without them. Chunks sit beside the entries, so that a URL
  // relative to the module (the worker's file, package.json, the bench's prices) resolves
  // the same from a chunk as from its entry.
  splitting: true,
  target: 'node20',
  sourcemap: true,
  logLevel: 'warning',
  write: false,
  // dynalite's store is a native addon that finds its prebuilt binaries beside its package.
  // esbuild (a native binary) bundles the dashboard's page when `fanout dashboard` starts.
  external: ['dynalite', 'classic-level', 'esbuild'],
  // CommonJS dependencies inside an ESM bundle still call require().
  banner: {
    js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
  },
});

// Each file written beside itself and renamed into place: a command started meanwhile (a
// test, a second terminal) reads the old file or the new one, never half of one. Chunks
// are named by their content, so a rebuild of the same sources writes the same names.
for (const file of result.outputFiles) {
  mkdirSync(dirname(file.path), { recursive: true });
  const temp = `${file.path}.${process.pid}.tmp`;
  writeFileSync(temp, file.contents, { mode: file.path.endsWith('fanout.mjs') ? 0o755 : 0o644 });
  renameSync(temp, file.path);
}
