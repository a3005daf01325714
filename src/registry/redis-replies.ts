/**
 * What Redis's error replies mean for whoever made the call, told apart by their first word (Redis's
 * error code). Three kinds matter: a refused login (the fix is the password); WRONGTYPE, bad data
 * in the key itself; and a refusal of the moment, which says nothing of the key and passes (a
 * loading, busy or failing-over server). Every other reply is none of these and passes as it is.
 * Only Redis's own replies (ioredis's ReplyError) are read: a connection failure is not a reply,
 * whatever its message says.
 */

/** Redis's replies to a wrong or missing password (WRONGPASS, NOAUTH; `ERR invalid password` before Redis 6). */
export const LOGIN_REFUSED = /^(WRONGPASS|NOAUTH)\b|^ERR invalid password/;

/** Redis's refusal of a command on a key of another type: bad data in the key, unlike every other refusal. */
export function isWrongType(err: unknown): err is Error {
  return isRedisReply(err) && err.message.startsWith('WRONGTYPE');
}

/** A refusal of the moment: Redis's code for it and what it means, said for an operator. */
export interface MomentaryRefusal {
  /** Redis's error code, the reply's first word (LOADING). */
  readonly word: string;
  /** "Redis is loading its data set". */
  readonly meaning: string;
}

/**
 * The replies of a Redis that cannot take the call just now, whatever the call and the key: the
 * same call succeeds once the server has loaded, finished its script, or failed over. (A router
 * reads them as it reads a dropped connection: the read fails and is made again; a one-shot
 * command reports the registry unreachable for now.)
 */
const OF_THE_MOMENT: ReadonlyMap<string, string> = new Map([
  ['LOADING', 'Redis is loading its data set'],
  ['BUSY', 'Redis is busy running a script'],
  ['MASTERDOWN', 'Redis (a replica) has lost its link with its master'],
  ['TRYAGAIN', 'Redis is moving the keys of the call (a cluster resharding)'],
  ['READONLY', 'Redis is a read-only replica (a failover under way?)'],
  ['NOREPLICAS', 'Redis has too few replicas in reach to take writes'],
]);

/** The refusal of the moment `err` is (LOADING, BUSY …), or undefined for any other reply or error. */
export function refusalOfTheMoment(err: unknown): MomentaryRefusal | undefined {
  if (!isRedisReply(err)) return undefined;
  const word = /^[A-Z]+(?=\s|$)/.exec(err.message)?.[0] ?? '';
  const meaning = OF_THE_MOMENT.get(word);
  return meaning === undefined ? undefined : { word, meaning };
}

/** An error reply of Redis's own (ioredis's ReplyError), not a failure to reach it. */
export function isRedisReply(err: unknown): err is Error {
  return err instanceof Error && err.name === 'ReplyError';
}
