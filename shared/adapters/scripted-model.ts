import { FanoutError } from '../domain/errors.js';
import type { ContentBlock, Model, ModelRequest, ModelResponse } from '../ports/model.js';

/** One canned answer: what the model says (text and tool calls), and optionally what it was billed. */
export interface ScriptedTurn {
  readonly content: readonly ContentBlock[];
  readonly usage?: { inputTokens: number; outputTokens: number };
}

/**
 * A model that answers from a list, turn by turn: for tests and offline demos. Usage is
 * the script's, or estimated from the request and the answer like a real model's. A
 * conversation that offers the `review` tool (the reviewer's) is answered from
 * `reviewTurns`, as a real model's answer depends on the role it is given.
 */
export function scriptedModel(
  id: string,
  turns: readonly ScriptedTurn[],
  reviewTurns: readonly ScriptedTurn[] = [],
): Model & { calls: ModelRequest[] } {
  const calls: ModelRequest[] = [];
  return {
    id,
    calls,
    async converse(request: ModelRequest): Promise<ModelResponse> {
      // The answer is chosen by the conversation's own position, so one model serves many
      // conversations, and a resumed one, as a real model does.
      const position = request.messages.filter((message) => message.role === 'assistant').length;
      const reviewing = request.tools.some((tool) => tool.name === 'review');
      const turn = (reviewing ? reviewTurns : turns)[position];
      calls.push(structuredClone(request)); // as sent: the conversation goes on changing
      if (!turn) {
        throw new FanoutError(
          'AGENT_FAILED',
          `the scripted model ${id} has no answer for ${reviewing ? "the reviewer's turn" : 'turn'} ${position + 1}`,
        );
      }
      const usage = turn.usage ?? {
        inputTokens: Math.ceil(JSON.stringify(request).length / 4),
        outputTokens: Math.ceil(JSON.stringify(turn.content).length / 4),
      };
      const usesTools = turn.content.some((block) => 'toolUse' in block);
      return {
        message: { role: 'assistant', content: turn.content },
        stopReason: usesTools ? 'tool_use' : 'end_turn',
        usage,
      };
    },
  };
}
