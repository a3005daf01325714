/**
 * The order in which `npm run bench` runs its proxies in one round of a scenario.
 *
 * The ratio the issue judges is the router against the bare Node proxy, so those two run back to
 * back in every round: this machine's slow spells (a neighbour taking the host's cores) last tens of
 * seconds and slow every process alike, and with all four proxies rotating, the router and the
 * bare proxy could be two runs apart (20 s) and land on opposite sides of one (seen 2026-12-06: the
 * bare proxy at 12,500 req/s over TLS, then at 4,900 a minute later with nothing else changed).
 * Which of the two goes first alternates from round to round, so neither always follows a warm-up
 * by the other; the rest rotate around the pair, so that none is always first or last.
 */
export const PAIRED = ['router', 'node-bare'] as const;

/** Every name in `names` once, for round `round` (1-based). */
export function roundOrder<Name extends string>(names: readonly Name[], round: number): Name[] {
  const [a, b] = PAIRED as readonly string[];
  const rotate = <T>(list: readonly T[], by: number): T[] => list.map((_, k) => list[(k + by) % list.length]!);
  if (!names.some((n) => n === a) || !names.some((n) => n === b)) return rotate(names, round - 1);
  const pair = (round % 2 === 1 ? [a, b] : [b, a]) as Name[];
  const others = names.filter((n) => n !== a && n !== b);
  const rest = rotate(others, round - 1);
  const at = (round - 1) % (rest.length + 1);
  return [...rest.slice(0, at), ...pair, ...rest.slice(at)];
}
