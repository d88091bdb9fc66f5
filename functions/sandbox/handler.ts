/**
 * The sandbox function: runs one of an agent's commands on a job's files. Its role may only
 * write its own logs and its environment names nothing: the files come and go through the
 * presigned URLs of the invocation (README, "The sandbox on AWS").
 */
import { runSandboxInvocation } from '../../shared/adapters/sandbox-function.js';

// /tmp, emptied before and after each command. Set otherwise only where the function's code
// runs outside Lambda (the tests), where /tmp is not its own.
const scratch = process.env.FANOUT_SANDBOX_SCRATCH ?? '/tmp';

export const handler = (event: unknown) => runSandboxInvocation(event, { scratch });
