/**
 * A process that works a journaled local queue until it is killed: it sends a message,
 * and every third step takes the oldest and deletes it, printing each step once its call
 * has returned. The journal test kills it with SIGKILL at a random moment and checks
 * the journal against what was printed.
 */
import { LocalQueue } from '../../shared/adapters/local-queue.js';

const dir = process.argv[2] as string;
const queue = LocalQueue.open(dir, { visibilityTimeoutMs: 600_000, maxReceiveCount: 1000 });
let step = 0;
for (;;) {
  const body = `m${step}`;
  await queue.send([{ id: body, body }]);
  process.stdout.write(`sent ${body}\n`);
  if (step % 3 === 2) {
    const [oldest] = await queue.receive(1, 0);
    if (oldest) {
      await queue.delete(oldest);
      process.stdout.write(`deleted ${oldest.body}\n`);
    }
  }
  step++;
  // Let the parent's kill land between steps as well as inside them.
  if (step % 50 === 0) await new Promise((resolve) => setImmediate(resolve));
}
