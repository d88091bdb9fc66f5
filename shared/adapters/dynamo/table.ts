import {
  ConditionalCheckFailedException,
  CreateTableCommand,
  DescribeTableCommand,
  type DynamoDBClient,
  ResourceNotFoundException,
  waitUntilTableExists,
} from '@aws-sdk/client-dynamodb';
import {
  DynamoDBDocumentClient,
  GetCommand,
  QueryCommand,
  type QueryCommandOutput,
} from '@aws-sdk/lib-dynamodb';
import { FanoutError } from '../../domain/errors.js';
import { PARTITION_KEY, SORT_KEY } from './schema.js';

export interface DynamoStateOptions {
  readonly tableName: string;
  readonly client: DynamoDBClient;
  /** Days after which DynamoDB's TTL may delete a record: the stack's workspace retention. @default 30 */
  readonly retentionDays?: number;
}

export function isConditionFailure(error: unknown): boolean {
  return (
    error instanceof ConditionalCheckFailedException ||
    (error as Error)?.name === 'ConditionalCheckFailedException'
  );
}

function isMissingTable(error: unknown): boolean {
  return error instanceof ResourceNotFoundException || (error as Error)?.name === 'ResourceNotFoundException';
}

/** What every role of the state table shares: the client, the table's name, its errors in words, TTL. */
export abstract class DynamoTable {
  protected readonly doc: DynamoDBDocumentClient;
  protected readonly table: string;
  private readonly ttlSeconds: number;

  constructor(options: DynamoStateOptions) {
    this.table = options.tableName;
    this.ttlSeconds = (options.retentionDays ?? 30) * 24 * 3600;
    this.doc = DynamoDBDocumentClient.from(options.client, {
      marshallOptions: { removeUndefinedValues: true },
    });
  }

  /** Runs one call, turning a missing table into an error that says what to do. */
  protected async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      if (isMissingTable(error)) {
        throw new FanoutError(
          'TABLE_MISSING',
          `state table "${this.table}" does not exist: deploy the stack (npx cdk deploy) or check FANOUT_TABLE_NAME`,
          { cause: error },
        );
      }
      throw error;
    }
  }

  /** Conditional write: true when applied, false when its condition did not hold. */
  protected async conditional(fn: () => Promise<unknown>): Promise<boolean> {
    try {
      await this.call(fn);
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  protected get(key: Record<string, string>) {
    return this.call(() =>
      this.doc.send(new GetCommand({ TableName: this.table, Key: key, ConsistentRead: true })),
    );
  }

  protected ttl(now: number): number {
    return Math.floor(now / 1000) + this.ttlSeconds;
  }

  protected async queryAll(pk: string): Promise<Record<string, unknown>[]> {
    const items: Record<string, unknown>[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page: QueryCommandOutput = await this.call(() =>
        this.doc.send(
          new QueryCommand({
            TableName: this.table,
            KeyConditionExpression: 'pk = :pk',
            ExpressionAttributeValues: { ':pk': pk },
            ExclusiveStartKey: start,
            ConsistentRead: true,
          }),
        ),
      );
      items.push(...(page.Items ?? []));
      start = page.LastEvaluatedKey;
    } while (start);
    return items;
  }
}

/** The table the core expects, for the embedded engine (the CDK stack declares the same on AWS). */
export async function ensureTable(client: DynamoDBClient, tableName: string): Promise<void> {
  try {
    await client.send(new DescribeTableCommand({ TableName: tableName }));
    return;
  } catch (error) {
    if (!isMissingTable(error)) throw error;
  }
  await client.send(
    new CreateTableCommand({
      TableName: tableName,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [
        { AttributeName: PARTITION_KEY, AttributeType: 'S' },
        { AttributeName: SORT_KEY, AttributeType: 'S' },
      ],
      KeySchema: [
        { AttributeName: PARTITION_KEY, KeyType: 'HASH' },
        { AttributeName: SORT_KEY, KeyType: 'RANGE' },
      ],
    }),
  );
  await waitUntilTableExists({ client, maxWaitTime: 30, minDelay: 1, maxDelay: 1 }, { TableName: tableName });
}
