import {
  type ContentBlock as BedrockBlock,
  type Message as BedrockMessage,
  type BedrockRuntimeClient,
  ConverseCommand,
} from '@aws-sdk/client-bedrock-runtime';
import { FanoutError, isTransient } from '../domain/errors.js';
import type { ChatMessage, ContentBlock, Model, ModelRequest, ModelResponse } from '../ports/model.js';

export interface BedrockModelOptions {
  readonly client: BedrockRuntimeClient;
  readonly modelId: string;
}

function toBedrock(block: ContentBlock): BedrockBlock {
  if ('text' in block) return { text: block.text };
  if ('toolUse' in block) {
    return {
      toolUse: {
        toolUseId: block.toolUse.toolUseId,
        name: block.toolUse.name,
        input: block.toolUse.input as never,
      },
    };
  }
  return {
    toolResult: {
      toolUseId: block.toolResult.toolUseId,
      content: block.toolResult.content.map((c) => ({ text: c.text })),
      status: block.toolResult.status,
    },
  };
}

function fromBedrock(block: BedrockBlock): ContentBlock | undefined {
  if (block.text !== undefined) return { text: block.text };
  if (block.toolUse) {
    return {
      toolUse: {
        toolUseId: block.toolUse.toolUseId ?? '',
        name: block.toolUse.name ?? '',
        input: (block.toolUse.input ?? {}) as Record<string, unknown>,
      },
    };
  }
  return undefined; // reasoning and other blocks the agent does not use
}

/**
 * Amazon Bedrock's Converse API with tool use. The client retries throttling with
 * backoff (give it `retryMode: 'adaptive'` and a few attempts); what still fails
 * transiently (throttling, ModelTimeout, 5xx, a reset connection) is a retryable
 * SERVICE_UNAVAILABLE, so the job goes back to the queue rather than failing.
 */
export class BedrockModel implements Model {
  readonly id: string;

  constructor(private readonly options: BedrockModelOptions) {
    this.id = options.modelId;
  }

  async converse(request: ModelRequest, signal?: AbortSignal): Promise<ModelResponse> {
    try {
      const response = await this.options.client.send(
        new ConverseCommand({
          modelId: this.options.modelId,
          system: [{ text: request.system }],
          messages: request.messages.map(
            (message): BedrockMessage => ({ role: message.role, content: message.content.map(toBedrock) }),
          ),
          toolConfig: {
            tools: request.tools.map((tool) => ({
              toolSpec: {
                name: tool.name,
                description: tool.description,
                inputSchema: { json: tool.inputSchema as never },
              },
            })),
          },
          inferenceConfig: { maxTokens: request.maxOutputTokens },
        }),
        signal ? { abortSignal: signal } : {},
      );
      const content = (response.output?.message?.content ?? [])
        .map(fromBedrock)
        .filter((b) => b !== undefined);
      const message: ChatMessage = { role: 'assistant', content };
      const stop = response.stopReason;
      return {
        message,
        stopReason:
          stop === 'tool_use' || stop === 'max_tokens' || stop === 'stop_sequence' ? stop : 'end_turn',
        usage: {
          inputTokens: response.usage?.inputTokens ?? 0,
          outputTokens: response.usage?.outputTokens ?? 0,
          cacheReadTokens: response.usage?.cacheReadInputTokens ?? 0,
          cacheWriteTokens: response.usage?.cacheWriteInputTokens ?? 0,
        },
      };
    } catch (error) {
      const name = (error as Error).name;
      if (isTransient(error)) {
        throw new FanoutError(
          'SERVICE_UNAVAILABLE',
          `Bedrock could not serve the call (${name}) after the SDK's retries`,
          {
            retryable: true,
            cause: error,
          },
        );
      }
      if (
        name === 'AccessDeniedException' ||
        name === 'ResourceNotFoundException' ||
        name === 'ValidationException'
      ) {
        throw new FanoutError(
          'AGENT_FAILED',
          `Bedrock refused model ${this.options.modelId}: ${(error as Error).message}`,
          {
            cause: error,
          },
        );
      }
      throw error;
    }
  }
}
