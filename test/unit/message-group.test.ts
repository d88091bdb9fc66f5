import { describe, expect, it } from 'vitest';
import { IssueSchema, MESSAGE_GROUP_MAX_CHARS, messageGroupOf, priorityOf } from '../../shared/domain/job.js';

/**
 * The AWS rule (SQS SendMessage, MessageGroupId): 1 to 128 characters, alphanumeric and
 * punctuation (!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~). A fair queue takes it on a standard queue.
 */
const SQS_MESSAGE_GROUP = /^[a-zA-Z0-9!"#$%&'()*+,\-./:;<=>?@[\\\]^_`{|}~]{1,128}$/;

describe('a repository as a message group', () => {
  it('is the repository itself when SQS allows it', () => {
    expect(messageGroupOf('acme/api')).toBe('acme/api');
    expect(SQS_MESSAGE_GROUP.test(messageGroupOf('acme/api'))).toBe(true);
  });

  it('stays within SQS rules for the longest names GitHub allows, and two long names stay apart', () => {
    const owner = 'o'.repeat(39);
    const a = `${owner}/${'a'.repeat(99)}x`;
    const b = `${owner}/${'a'.repeat(99)}y`;
    for (const repo of [a, b]) {
      expect(IssueSchema.safeParse({ repo, number: 1, title: 't' }).success).toBe(true);
      expect(repo.length).toBeGreaterThan(MESSAGE_GROUP_MAX_CHARS);
      expect(SQS_MESSAGE_GROUP.test(messageGroupOf(repo))).toBe(true);
    }
    expect(messageGroupOf(a)).not.toBe(messageGroupOf(b));
    expect(messageGroupOf(a)).toBe(messageGroupOf(a));
  });
});

describe("an issue's priority", () => {
  it("is the send's when it names one, else its first priority: label, else normal", () => {
    const labels = (...names: string[]) => ({ labels: names });
    expect(priorityOf(labels('bug'))).toBe('normal');
    expect(priorityOf(labels('bug', 'Priority:High'))).toBe('high');
    expect(priorityOf(labels('priority:urgent', 'priority: low'))).toBe('low');
    expect(priorityOf(labels('priority:high'), 'low')).toBe('low');
  });
});
