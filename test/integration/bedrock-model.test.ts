import { BedrockRuntimeClient, ConverseCommand, ThrottlingException } from '@aws-sdk/client-bedrock-runtime';
import { type AwsClientStub, mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BedrockModel } from '../../shared/adapters/bedrock-model.js';
import { TOOL_SPECS } from '../../shared/agents/tools.js';

describe('Bedrock model adapter: the exact Converse call', () => {
  let bedrock: AwsClientStub<BedrockRuntimeClient>;
  beforeAll(() => {
    bedrock = mockClient(BedrockRuntimeClient);
  });
  afterAll(() => bedrock.restore());
  beforeEach(() => bedrock.reset());
  const model = () =>
    new BedrockModel({
      client: new BedrockRuntimeClient({ region: 'us-east-1' }),
      modelId: 'anthropic.claude-sonnet-4-20250514-v1:0',
    });

  it('sends the system prompt, the conversation, the tools and the output limit; maps the answer and its usage', async () => {
    bedrock.on(ConverseCommand).resolves({
      output: {
        message: {
          role: 'assistant',
          content: [
            { text: 'Reading it.' },
            { toolUse: { toolUseId: 't1', name: 'read_file', input: { path: 'a.txt' } } },
          ],
        },
      },
      stopReason: 'tool_use',
      usage: { inputTokens: 1200, outputTokens: 80, totalTokens: 1280, cacheReadInputTokens: 300 },
      metrics: { latencyMs: 1 },
    });
    const response = await model().converse({
      system: 'be careful',
      messages: [
        { role: 'user', content: [{ text: 'fix it' }] },
        { role: 'assistant', content: [{ toolUse: { toolUseId: 't0', name: 'list_files', input: {} } }] },
        {
          role: 'user',
          content: [{ toolResult: { toolUseId: 't0', content: [{ text: 'a.txt' }], status: 'success' } }],
        },
      ],
      tools: TOOL_SPECS,
      maxOutputTokens: 512,
    });
    expect(bedrock).toHaveReceivedCommandWith(ConverseCommand, {
      modelId: 'anthropic.claude-sonnet-4-20250514-v1:0',
      system: [{ text: 'be careful' }],
      inferenceConfig: { maxTokens: 512 },
      messages: [
        { role: 'user', content: [{ text: 'fix it' }] },
        { role: 'assistant', content: [{ toolUse: { toolUseId: 't0', name: 'list_files', input: {} } }] },
        {
          role: 'user',
          content: [{ toolResult: { toolUseId: 't0', content: [{ text: 'a.txt' }], status: 'success' } }],
        },
      ],
    });
    const sent = bedrock.commandCalls(ConverseCommand)[0]?.args[0].input;
    expect(sent?.toolConfig?.tools?.map((t) => t.toolSpec?.name)).toEqual(TOOL_SPECS.map((t) => t.name));
    expect(response).toEqual({
      message: {
        role: 'assistant',
        content: [
          { text: 'Reading it.' },
          { toolUse: { toolUseId: 't1', name: 'read_file', input: { path: 'a.txt' } } },
        ],
      },
      stopReason: 'tool_use',
      usage: { inputTokens: 1200, outputTokens: 80, cacheReadTokens: 300, cacheWriteTokens: 0 },
    });
  });

  it('turns throttling that outlasted the retries into a retryable error, and refusal into a plain failure', async () => {
    bedrock.on(ConverseCommand).rejectsOnce(new ThrottlingException({ message: 'slow down', $metadata: {} }));
    await expect(
      model().converse({
        system: 's',
        messages: [{ role: 'user', content: [{ text: 'x' }] }],
        tools: [],
        maxOutputTokens: 10,
      }),
    ).rejects.toMatchObject({ code: 'SERVICE_UNAVAILABLE', retryable: true });
    bedrock
      .on(ConverseCommand)
      .rejects(Object.assign(new Error('no access to the model'), { name: 'AccessDeniedException' }));
    await expect(
      model().converse({
        system: 's',
        messages: [{ role: 'user', content: [{ text: 'x' }] }],
        tools: [],
        maxOutputTokens: 10,
      }),
    ).rejects.toMatchObject({
      code: 'AGENT_FAILED',
      retryable: false,
      message: expect.stringMatching(/Bedrock refused model/),
    });
  });
});
