import { FanoutError } from './errors.js';

/**
 * Checks a path an agent or worker gives for a job's workspace and returns it in
 * canonical form. Refuses anything that could leave the job's prefix (invariant 6).
 */
export function safeRelativePath(path: string): string {
  const refuse = (why: string) =>
    new FanoutError('WORKSPACE_PATH_REFUSED', `workspace path "${path}" refused: ${why}`);
  if (typeof path !== 'string' || path.length === 0) throw refuse('it is empty');
  if (path.includes('\0')) throw refuse('it contains a NUL byte');
  if (path.includes('\\')) throw refuse('use forward slashes');
  if (path.startsWith('/') || /^[A-Za-z]:/.test(path)) throw refuse('absolute paths are not allowed');
  const parts = path.split('/').filter((part) => part !== '' && part !== '.');
  if (parts.some((part) => part === '..')) throw refuse('".." is not allowed');
  if (parts.length === 0) throw refuse('it names the workspace itself');
  return parts.join('/');
}
