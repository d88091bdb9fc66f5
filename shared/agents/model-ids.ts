import profiles from './inference-profiles.json' with { type: 'json' };

/** The offline demo model: no provider, nothing to grant. */
export const DEMO_MODEL = 'scripted:demo';

const GEOGRAPHIES: Readonly<Record<string, readonly string[]>> = profiles.geographies;

/**
 * A Bedrock model id as a user gives it: a foundation model (`anthropic.claude-...`) or
 * a cross-Region inference profile (`us.anthropic.claude-...`, `eu.`, `apac.`, `global.`),
 * which current Claude models need for on-demand calls.
 */
export interface ModelId {
  readonly id: string;
  /** The foundation model behind a profile; the id itself otherwise. Prices are kept by this id. */
  readonly baseId: string;
  /** The profile's geography (`us`, `eu`, ...), when the id is an inference profile. */
  readonly geography?: string;
  /** Regions a profile routes to (`*` for global); empty for a foundation model (its own Region). */
  readonly destinationRegions: readonly string[];
}

export const MODEL_ID_PATTERN = /^[a-z0-9-]+(\.[A-Za-z0-9_-]+)+(:\d+)?$/;

export function parseModelId(id: string): ModelId {
  const dot = id.indexOf('.');
  const head = id.slice(0, dot);
  const regions = dot > 0 ? GEOGRAPHIES[head] : undefined;
  if (regions === undefined) return { id, baseId: id, destinationRegions: [] };
  return { id, baseId: id.slice(dot + 1), geography: head, destinationRegions: regions };
}

export const isBedrockModel = (id: string): boolean => id !== DEMO_MODEL;
