/**
 * A language model with tool use, shaped like Amazon Bedrock's Converse API so the
 * Bedrock adapter is a thin mapping and a scripted model can stand in for tests.
 */
export type ContentBlock =
  | { readonly text: string }
  | {
      readonly toolUse: {
        readonly toolUseId: string;
        readonly name: string;
        readonly input: Record<string, unknown>;
      };
    }
  | {
      readonly toolResult: {
        readonly toolUseId: string;
        readonly content: readonly { readonly text: string }[];
        readonly status: 'success' | 'error';
      };
    };

export interface ChatMessage {
  readonly role: 'user' | 'assistant';
  readonly content: readonly ContentBlock[];
}

export interface ToolSpec {
  readonly name: string;
  readonly description: string;
  readonly inputSchema: Record<string, unknown>;
}

export interface Usage {
  readonly inputTokens: number;
  readonly outputTokens: number;
  readonly cacheReadTokens?: number;
  readonly cacheWriteTokens?: number;
}

export interface ModelRequest {
  readonly system: string;
  readonly messages: readonly ChatMessage[];
  readonly tools: readonly ToolSpec[];
  readonly maxOutputTokens: number;
}

export interface ModelResponse {
  readonly message: ChatMessage;
  readonly stopReason: 'end_turn' | 'tool_use' | 'max_tokens' | 'stop_sequence';
  readonly usage: Usage;
}

export interface Model {
  readonly id: string;
  converse(request: ModelRequest, signal?: AbortSignal): Promise<ModelResponse>;
}
