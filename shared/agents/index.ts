import type { Range } from '../domain/units.js';
import type { Agent } from '../ports/agent.js';
import { simulateAgent } from './simulate.js';

/** How a worker builds its agent: plain data, so it can travel to a worker process or a Lambda. */
export type AgentConfig = {
  readonly kind: 'simulate';
  readonly durationMs: Range;
  readonly failRate: number;
  readonly costMicros: Range;
  readonly seed: number;
};

export function createAgent(config: AgentConfig): Agent {
  switch (config.kind) {
    case 'simulate':
      return simulateAgent(config);
  }
}
