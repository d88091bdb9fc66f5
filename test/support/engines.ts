import { DynamoState, ensureTable } from '../../shared/adapters/dynamo-state.js';
import {
  type EmbeddedDynamo,
  embeddedDynamoClient,
  startEmbeddedDynamo,
} from '../../shared/adapters/embedded-dynamo.js';

export interface StateFixture {
  readonly engine: EmbeddedDynamo;
  readonly state: DynamoState;
  close(): Promise<void>;
}

/** A fresh in-memory dynalite with the fanout table: the real engine, not a mock. */
export async function startState(tableName = 'fanout-test'): Promise<StateFixture> {
  const engine = await startEmbeddedDynamo();
  const client = embeddedDynamoClient(engine.endpoint);
  await ensureTable(client, tableName);
  return {
    engine,
    state: new DynamoState({ tableName, client }),
    close: async () => {
      client.destroy();
      await engine.close();
    },
  };
}
