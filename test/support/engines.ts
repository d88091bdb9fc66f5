import { dynamoState, ensureTable } from '../../shared/adapters/dynamo/index.js';
import {
  type EmbeddedDynamo,
  embeddedDynamoClient,
  startEmbeddedDynamo,
} from '../../shared/adapters/embedded-dynamo.js';
import type { StatePort } from '../../shared/ports/state.js';

export interface StateFixture {
  readonly engine: EmbeddedDynamo;
  readonly state: StatePort;
  close(): Promise<void>;
}

/** A fresh in-memory dynalite with the fanout table: the real engine, not a mock. */
export async function startState(tableName = 'fanout-test'): Promise<StateFixture> {
  const engine = await startEmbeddedDynamo();
  const client = embeddedDynamoClient(engine.endpoint);
  await ensureTable(client, tableName);
  return {
    engine,
    state: dynamoState({ tableName, client }),
    close: async () => {
      client.destroy();
      await engine.close();
    },
  };
}
