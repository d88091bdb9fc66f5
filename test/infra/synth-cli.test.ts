import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '../..');
const run = promisify(execFile);

describe('npm run synth', () => {
  it('synthesizes offline with cdk-nag on, and refuses bad context naming the key', async () => {
    const out = await mkdtemp(join(tmpdir(), 'fanout-synth-'));
    await run('npm', ['run', 'synth', '--', '--output', out], { cwd: ROOT, timeout: 120_000 });
    const template = JSON.parse(readFileSync(join(out, 'Fanout.template.json'), 'utf8'));
    expect(Object.keys(template.Outputs)).toEqual(
      expect.arrayContaining(['QueueUrl', 'TableName', 'BucketName']),
    );
    expect(existsSync(join(out, 'manifest.json'))).toBe(true);

    const bad = run('npm', ['run', 'synth', '--', '--output', out, '-c', 'workers=0'], {
      cwd: ROOT,
      timeout: 120_000,
    });
    await expect(bad).rejects.toMatchObject({
      stderr: expect.stringMatching(/workers must be a whole number from 2 to 1000, not "0"/),
    });
  }, 240_000);
});
