import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { FanoutError } from '../domain/errors.js';
import type { Usage } from '../ports/model.js';

const PriceSchema = z.object({
  input: z.number().nonnegative(),
  output: z.number().nonnegative(),
  cacheRead: z.number().nonnegative().default(0),
  cacheWrite: z.number().nonnegative().default(0),
});
export const PriceTableSchema = z.object({
  asOf: z.string(),
  models: z.record(z.string(), PriceSchema),
});
export type Price = z.infer<typeof PriceSchema>;
export type PriceTable = z.infer<typeof PriceTableSchema>;

/** The price table kept with the code, or a user's own (same shape). */
export function loadPriceTable(path?: string): PriceTable {
  const file = path ?? new URL('./model-prices.json', import.meta.url);
  const parsed = PriceTableSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
  if (!parsed.success) {
    throw new FanoutError(
      'INVALID_INPUT',
      `price table ${String(file)} is malformed: ${parsed.error.issues[0]?.message}`,
    );
  }
  return parsed.data;
}

export function priceOf(table: PriceTable, modelId: string): Price {
  const price = table.models[modelId];
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
