import { NotFoundError, type AliasTarget } from '@tq/contracts';

/** Where aliases are read from (AliasStore in @tq/queue, Redis): one lookup per request. */
export interface AliasLookup {
  get(tenant: string, name: string, alias: string): Promise<AliasTarget | undefined>;
}

/** The concrete version a predict runs on, and how it was chosen. */
export interface Served {
  version: number;
  /** The alias the request named; undefined for a version named by number. */
  alias?: string;
  /** True when the alias's canary share drew this request. */
  canary: boolean;
}

/**
 * The version an alias serves for one request: the canary's when `draw` (uniform in [0, 1)) falls
 * below its weight, else the alias's own. Pure: the same target and draw give the same answer.
 */
export function pickServed(target: AliasTarget, draw: number): { version: number; canary: boolean } {
  const canary = target.canary;
  if (canary && draw < canary.weight) return { version: canary.version, canary: true };
  return { version: target.version, canary: false };
}

/**
 * What `name@aliasOrVersion` (or `.../versions/3`, `.../aliases/production`) serves in `tenant`:
 * digits are a version as they are, anything else an alias read once through `aliases`; an alias
 * the model does not have is a 404 naming "alias". The API's predict routes and the serve replicas
 * call this same function, so both pick versions alike. Whether the version exists is the
 * caller's next read (its metadata), a 404 naming "version" when it does not.
 */
export async function resolveServed(
  aliases: AliasLookup,
  tenant: string,
  name: string,
  aliasOrVersion: string,
  random: () => number = Math.random,
): Promise<Served> {
  if (/^\d+$/.test(aliasOrVersion)) return { version: Number(aliasOrVersion), canary: false };
  const target = await aliases.get(tenant, name, aliasOrVersion);
  if (!target) throw new NotFoundError('alias', `model "${name}" has no alias "${aliasOrVersion}"`);
  return { ...pickServed(target, random()), alias: aliasOrVersion };
}
