import type { StatePort } from '../../ports/state.js';
import { DynamoJobLeases } from './job-leases.js';
import { DynamoRunLedger } from './run-ledger.js';
import type { DynamoStateOptions } from './table.js';
import { DynamoWorkerSlots } from './worker-slots.js';

export { type DynamoStateOptions, ensureTable } from './table.js';

/** The whole state port on one DynamoDB table: its three roles side by side. */
export function dynamoState(options: DynamoStateOptions): StatePort {
  return {
    ...methodsOf(new DynamoRunLedger(options)),
    ...methodsOf(new DynamoJobLeases(options)),
    ...methodsOf(new DynamoWorkerSlots(options)),
  } as unknown as StatePort;
}

/** The public methods of a role's instance, bound to it, as own properties that spread. */
function methodsOf(role: object): Record<string, unknown> {
  const methods: Record<string, unknown> = {};
  const proto = Object.getPrototypeOf(role) as Record<string, unknown>;
  for (const name of Object.getOwnPropertyNames(proto)) {
    const value = proto[name];
    if (name !== 'constructor' && typeof value === 'function') methods[name] = value.bind(role);
  }
  return methods;
}
