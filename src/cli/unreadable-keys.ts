/**
 * The registry keys a command's read could not read (RegistryState.unreadable), each by its Redis
 * key and Redis's refusal. A command that reports on the registry must not present such a part as
 * empty: a backup without the residency rules restores every org to every region, an explanation
 * without them routes an org where a router never would. Pure: the commands say it and decide.
 */
import type { RegistryState, UnreadablePart } from '../registry/health-registry.js';

/** Every part a read may find unreadable, in the order they are said: the legal constraint first. */
export const UNREADABLE_PARTS: readonly UnreadablePart[] = ['residency', 'functions', 'domains', 'overrides', 'generation'];

/** What a part holds, as missing from what a command would print without it. */
const HOLDS: Readonly<Record<UnreadablePart, string>> = {
  residency: 'the residency rules',
  functions: 'the functions',
  domains: 'the custom domains',
  overrides: 'the drains and weights',
  generation: "the registry's generation",
};

/** What a part holds ("the residency rules"). */
export function holdingsOf(part: UnreadablePart): string {
  return HOLDS[part];
}

export interface UnreadableKey {
  readonly part: UnreadablePart;
  /** The Redis key, prefix and all, as an operator would look at it (redis-cli TYPE <key>). */
  readonly key: string;
  /** Redis's refusal (WRONGTYPE …). */
  readonly why: string;
  /** What is missing without it ("the residency rules"). */
  readonly holds: string;
}

/** The parts of `state` among `parts` that could not be read, in UNREADABLE_PARTS's order. */
export function unreadableKeys(state: Pick<RegistryState, 'unreadable'>, keyPrefix: string, parts: readonly UnreadablePart[] = UNREADABLE_PARTS): UnreadableKey[] {
  return UNREADABLE_PARTS.filter((part) => parts.includes(part) && state.unreadable.has(part)).map((part) => ({
    part,
    key: `${keyPrefix}${part}`,
    why: state.unreadable.get(part)!,
    holds: holdingsOf(part),
  }));
}

/** "the registry's residency key edge:residency cannot be read (WRONGTYPE …)". */
export function describeUnreadableKey(unreadable: UnreadableKey): string {
  return `the registry's ${unreadable.part} key ${unreadable.key} cannot be read (${unreadable.why})`;
}
