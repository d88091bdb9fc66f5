import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { jobKey, jobPrefix, parseRunId } from '../../shared/domain/job.js';
import { statePath } from '../../shared/local/state-dir.js';

describe('names that become paths', () => {
  it('builds every path under the state dir through one check that refuses a way out', () => {
    expect(statePath('.fanout', 'runs', 'r1', 'report.json')).toBe(resolve('.fanout/runs/r1/report.json'));
    for (const outside of [['..', 'x'], ['runs', '../../x'], ['/etc/passwd']]) {
      expect(() => statePath('.fanout', ...outside)).toThrow(/would lead outside the state dir/);
    }
  });

  it('validates a run id the same way for every command', () => {
    expect(parseRunId('run-2026_11')).toBe('run-2026_11');
    for (const bad of ['../../x', 'a/b', '', 'x'.repeat(65), 'a b']) {
      expect(() => parseRunId(bad)).toThrow(/--run-id must be 1-64 letters, digits, _ or -/);
    }
  });

  it('treats owner and repository names as GitHub does: case-insensitive', () => {
    const keys = ['acme/api', 'ACME/API', 'Acme/Api'].map((repo) => jobKey({ repo, number: 7 }));
    expect(new Set(keys)).toEqual(new Set(['acme/api#7']));
    expect(jobPrefix('r', { repo: 'Acme/Api', number: 7 })).toBe('runs/r/jobs/acme/api/7/');
  });
});
