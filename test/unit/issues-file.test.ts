import { describe, expect, it } from 'vitest';
import { parseIssues } from '../../shared/adapters/issues-file.js';
import { jobKey, jobPrefix } from '../../shared/domain/job.js';

const line = (n: number, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ repo: 'acme/api', number: n, title: `Issue ${n}`, ...extra });

describe('issues file', () => {
  it('reads JSONL and a JSON array alike', () => {
    const jsonl = [line(1), '', line(2, { labels: ['bug'] })].join('\n');
    expect(parseIssues(jsonl, 'x.jsonl').map(jobKey)).toEqual(['acme/api#1', 'acme/api#2']);
    const array = `[${line(3)}, ${line(4)}]`;
    expect(parseIssues(array, 'x.json').map((i) => i.number)).toEqual([3, 4]);
  });

  it('reports every problem with its line and returns nothing', () => {
    const lines = [
      line(1),
      line(2),
      line(3),
      line(4),
      line(5),
      line(6),
      '{"repo": "acme/api", "number": 7,',
      line(8),
    ];
    lines.push(JSON.stringify({ repo: 'acme/api', title: 'no number' }));
    lines.push(line(2));
    const text = lines.join('\n');
    expect(() => parseIssues(text, 'issues.jsonl')).toThrowError(
      expect.objectContaining({
        code: 'INVALID_INPUT',
        message: expect.stringMatching(
          /issues\.jsonl" has 3 problem\(s\); nothing was sent:[\s\S]*line 7: bad JSON[\s\S]*line 9: number:[\s\S]*line 10: duplicate issue acme\/api#2 \(first at line 2\)/,
        ),
      }),
    );
  });

  it('refuses repo names that could leave a job prefix', () => {
    expect(() => parseIssues(JSON.stringify({ repo: '../etc', number: 1, title: 't' }), 'f')).toThrow(/repo/);
    expect(() => parseIssues(JSON.stringify({ repo: 'a/..', number: 1, title: 't' }), 'f')).toThrow(/repo/);
  });

  it('puts each job under its own prefix, keyed by the issue', () => {
    expect(jobKey({ repo: 'acme/api', number: 12 })).toBe('acme/api#12');
    expect(jobPrefix('r1', { repo: 'acme/api', number: 12 })).toBe('runs/r1/jobs/acme/api/12/');
  });

  it('accepts a UTF-8 byte order mark, and lists problems in the order of the file', () => {
    const bom = '\uFEFF{"repo":"acme/api","number":1,"title":"one"}\n';
    expect(parseIssues(bom, 'bom.jsonl').map((i) => i.number)).toEqual([1]);
    const text = [
      '{"repo":"acme/api","number":1}',
      'not json',
      '{"repo":"acme/api","number":3,"title":"t"}',
      '{"repo":"ACME/API","number":3,"title":"t"}',
    ].join('\n');
    const message = (() => {
      try {
        parseIssues(text, 'x.jsonl');
        return '';
      } catch (error) {
        return (error as Error).message;
      }
    })();
    const lines = message.split('\n').filter((l) => l.startsWith('  line'));
    expect(lines.map((l) => l.match(/line (\d+)/)?.[1])).toEqual(['1', '2', '4']);
    expect(lines[2]).toMatch(/duplicate issue acme\/api#3 \(first at line 3\)/);
  });
});
