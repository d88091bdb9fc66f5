import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';

/** Empties a folder without removing it, so one job never sees another's files. */
export async function emptyDirectory(path: string): Promise<void> {
  await mkdir(path, { recursive: true });
  for (const entry of await readdir(path)) await rm(join(path, entry), { recursive: true, force: true });
}
