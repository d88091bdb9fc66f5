import { readFileSync } from 'node:fs';
import { type Price, type PriceTable, PriceTableSchema } from '../domain/agent-settings.js';
import { FanoutError } from '../domain/errors.js';
import type { Usage } from '../ports/model.js';
import { parseModelId } from './model-ids.js';
// Imported, not read beside the module: esbuild bundles an import, and leaves a file behind.
import bundled from './model-prices.json' with { type: 'json' };

/** The price table kept with the code (and bundled with the worker). */
export const BUNDLED_PRICES: PriceTable = PriceTableSchema.parse(bundled);

/**
 * A user's own price table, read on the machine that starts the run: its content, not
 * its path, travels with the run, since a worker on Lambda cannot read the sender's files.
 */
export function readPriceTable(path: string): PriceTable {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new FanoutError('INVALID_INPUT', `cannot read price table ${path}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const parsed = PriceTableSchema.safeParse(json);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    throw new FanoutError(
      'INVALID_INPUT',
      `price table ${path} is malformed: ${first?.path.join('.') || '(root)'}: ${first?.message}`,
    );
  }
  return parsed.data;
}

/** A model's price; an inference profile (`us.anthropic...`) costs what its foundation model does. */
export function priceOf(table: PriceTable, modelId: string): Price {
  const price = table.models[modelId] ?? table.models[parseModelId(modelId).baseId];
  if (!price) {
    throw new FanoutError(
      'INVALID_INPUT',
      `no price for model "${modelId}" in the price table (as of ${table.asOf}): add it, or pass a table with --prices`,
    );
  }
  return price;
}

/** What a call cost, in micro-dollars, rounded up: prices are USD per million tokens. */
export function costMicros(price: Price, usage: Usage): number {
  return Math.ceil(
    usage.inputTokens * price.input +
      usage.outputTokens * price.output +
      (usage.cacheReadTokens ?? 0) * price.cacheRead +
      (usage.cacheWriteTokens ?? 0) * price.cacheWrite,
  );
}

/**
 * The most a call can cost: every input token at the highest input rate (a cache
 * write costs more than a plain input token), and the full output allowance.
 */
export function worstCaseMicros(price: Price, inputTokens: number, maxOutputTokens: number): number {
  return Math.ceil(inputTokens * Math.max(price.input, price.cacheWrite) + maxOutputTokens * price.output);
}

/** A cautious token estimate for text not yet sent: one token per 3 characters. */
export const estimateTokens = (text: string): number => Math.ceil(text.length / 3);
