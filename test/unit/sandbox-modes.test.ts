import { describe, expect, it } from 'vitest';
import { checkSandboxAllowed } from '../../cli/send-command.js';
import { sandboxFor } from '../../shared/agents/llm-wiring.js';
import type { Sandbox, SandboxIsolation } from '../../shared/ports/sandbox.js';

const owner = { jobPrefix: 'runs/r/jobs/acme/api/1/' };

/** A sandbox that only says what isolation it has, and counts the rooms it was asked for. */
function sandboxWith(isolation: SandboxIsolation) {
  const opened: number[] = [];
  const sandbox: Sandbox = {
    isolation: async () => isolation,
    open: async () => {
      opened.push(1);
      return {
        dir: '/nowhere',
        run: async () => Promise.reject(new Error('not here')),
        dispose: async () => {},
      };
    },
  };
  return { sandbox, opened };
}

describe('--sandbox none|auto|strict', () => {
  it('none gives the agent no sandbox; a run that asks for one on a worker without one is refused, saying what to do', () => {
    expect(sandboxFor('none', { sandbox: () => sandboxWith('full').sandbox })).toBeUndefined();
    expect(() => sandboxFor('auto', {})).toThrow(/this worker has none .*send with --sandbox none/);
  });

  it('auto takes any isolation; strict refuses a room where the network cannot be isolated', async () => {
    const weak = sandboxWith('none');
    await (sandboxFor('auto', { sandbox: () => weak.sandbox }) as Sandbox).open(owner);
    expect(weak.opened).toHaveLength(1);
    await expect(
      (sandboxFor('strict', { sandbox: () => weak.sandbox }) as Sandbox).open(owner),
    ).rejects.toMatchObject({
      code: 'SANDBOX_FAILED',
      message: expect.stringMatching(/--sandbox strict: this machine cannot isolate the network/),
    });
    expect(weak.opened).toHaveLength(1);
    const isolated = sandboxWith('network');
    await (sandboxFor('strict', { sandbox: () => isolated.sandbox }) as Sandbox).open(owner);
    expect(isolated.opened).toHaveLength(1);
  });

  it("strict refuses the stack's sandbox function, whose network is not isolated, saying to use auto", async () => {
    const remote = sandboxWith('function');
    await expect(
      (sandboxFor('strict', { sandbox: () => remote.sandbox }) as Sandbox).open(owner),
    ).rejects.toMatchObject({ code: 'SANDBOX_FAILED', message: expect.stringMatching(/use --sandbox auto/) });
    await (sandboxFor('auto', { sandbox: () => remote.sandbox }) as Sandbox).open(owner);
    expect(remote.opened).toHaveLength(1);
  });
});

describe('fanout send --sandbox to a stack', () => {
  const llm = (sandbox?: 'auto' | 'strict') => ({
    kind: 'llm' as const,
    model: 'scripted:demo',
    maxSteps: 10,
    maxOutputTokens: 100,
    maxCostPerJobMicros: 1000,
    publish: 'none' as const,
    ...(sandbox ? { sandbox } : {}),
  });

  it('is refused by a stack without a sandbox function (or one older than it), saying how to deploy one', () => {
    for (const stack of [{ sandbox: 'none' }, {}]) {
      expect(() => checkSandboxAllowed(llm('auto'), stack)).toThrow(
        /no sandbox function: deploy it with -c sandbox=lambda/,
      );
    }
    expect(() => checkSandboxAllowed(llm(), { sandbox: 'none' })).not.toThrow();
  });

  it('goes to a stack with one; strict is refused there, its network not being isolated', () => {
    expect(() => checkSandboxAllowed(llm('auto'), { sandbox: 'lambda' })).not.toThrow();
    expect(() => checkSandboxAllowed(llm('strict'), { sandbox: 'lambda' })).toThrow(
      /send with --sandbox auto/,
    );
  });
});
