import { readFile } from 'node:fs/promises';
import { FanoutError } from '../domain/errors.js';
import { type Issue, IssueSchema, jobKey } from '../domain/job.js';

/**
 * Reads issues from a JSON array (`.json`) or one issue per line (`.jsonl`). Every
 * problem is reported together, with its line or index, before anything is used.
 */
export async function readIssuesFile(path: string): Promise<Issue[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new FanoutError('INVALID_INPUT', `cannot read issues file "${path}": ${(error as Error).message}`, {
      cause: error,
    });
  }
  return parseIssues(text, path);
}

export function parseIssues(raw: string, source: string): Issue[] {
  // Editors on Windows start UTF-8 files with a byte order mark: it is not part of the JSON.
  const text = raw.replace(/^\uFEFF/, '');
  // Each problem with its place, so they are listed in the file's order.
  const found: { at: number; text: string }[] = [];
  const problem = (at: number, text: string) => found.push({ at, text });
  const entries: { where: string; at: number; value: unknown }[] = [];
  const trimmed = text.trimStart();
  if (trimmed.startsWith('[')) {
    try {
      const array = JSON.parse(text) as unknown[];
      array.forEach((value, i) => {
        entries.push({ where: `item ${i}`, at: i, value });
      });
    } catch (error) {
      problem(-1, `not valid JSON: ${(error as Error).message}`);
    }
  } else {
    text.split('\n').forEach((line, i) => {
      if (line.trim() === '') return;
      try {
        entries.push({ where: `line ${i + 1}`, at: i, value: JSON.parse(line) });
      } catch (error) {
        problem(i, `line ${i + 1}: bad JSON (${(error as Error).message})`);
      }
    });
  }
  const issues: Issue[] = [];
  const seen = new Map<string, string>();
  for (const { where, at, value } of entries) {
    const parsed = IssueSchema.safeParse(value);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        problem(at, `${where}: ${issue.path.join('.') || '(issue)'}: ${issue.message}`);
      }
      continue;
    }
    const key = jobKey(parsed.data);
    const first = seen.get(key);
    if (first) {
      problem(at, `${where}: duplicate issue ${key} (first at ${first})`);
      continue;
    }
    seen.set(key, where);
    issues.push(parsed.data);
  }
  if (found.length === 0 && issues.length === 0) problem(-1, 'it holds no issues');
  const problems = found.sort((a, b) => a.at - b.at).map((p) => p.text);
  if (problems.length > 0) {
    throw new FanoutError(
      'INVALID_INPUT',
      `issues file "${source}" has ${problems.length} problem(s); nothing was sent:\n  ${problems.join('\n  ')}\n` +
        'Each issue needs {"repo": "owner/name", "number": 1, "title": "..."}; body, labels and url are optional.',
    );
  }
  return issues;
}
