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

export function parseIssues(text: string, source: string): Issue[] {
  const problems: string[] = [];
  const entries: { where: string; value: unknown }[] = [];
  const trimmed = text.trimStart();
  if (trimmed.startsWith('[')) {
    try {
      const array = JSON.parse(text) as unknown[];
      array.forEach((value, i) => {
        entries.push({ where: `item ${i}`, value });
      });
    } catch (error) {
      problems.push(`not valid JSON: ${(error as Error).message}`);
    }
  } else {
    text.split('\n').forEach((line, i) => {
      if (line.trim() === '') return;
      try {
        entries.push({ where: `line ${i + 1}`, value: JSON.parse(line) });
      } catch (error) {
        problems.push(`line ${i + 1}: bad JSON (${(error as Error).message})`);
      }
    });
  }
  const issues: Issue[] = [];
  const seen = new Map<string, string>();
  for (const { where, value } of entries) {
    const parsed = IssueSchema.safeParse(value);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        problems.push(`${where}: ${issue.path.join('.') || '(issue)'}: ${issue.message}`);
      }
      continue;
    }
    const key = jobKey(parsed.data);
    const first = seen.get(key);
    if (first) {
      problems.push(`${where}: duplicate issue ${key} (first at ${first})`);
      continue;
    }
    seen.set(key, where);
    issues.push(parsed.data);
  }
  if (problems.length === 0 && issues.length === 0) problems.push('it holds no issues');
  if (problems.length > 0) {
    throw new FanoutError(
      'INVALID_INPUT',
      `issues file "${source}" has ${problems.length} problem(s); nothing was sent:\n  ${problems.join('\n  ')}\n` +
        'Each issue needs {"repo": "owner/name", "number": 1, "title": "..."}; body, labels and url are optional.',
    );
  }
  return issues;
}
