import { describe, expect, it } from 'vitest';
import { ENDED_SESSION_LOOK_MS, EndedSessionSweep } from '../../src/ingress/http2-ended-sessions.js';

/** Stand-in sessions: each with the time of its last activity (undefined: closing). */
function sweepOver(sessions: Array<{ name: string; since: number | undefined }>, clock: { now: number }) {
  const asked: string[] = [];
  const sweep = new EndedSessionSweep({ sessions: () => sessions, quietSince: (s) => s.since, readAgain: (s) => asked.push(s.name) }, () => clock.now);
  return { sweep, asked };
}

describe('ended HTTP/2 sessions: which are asked to read again', () => {
  it('asks a session once it has been quiet for a look, and once per quiet spell', () => {
    const clock = { now: 10_000 };
    const quiet = { name: 'quiet', since: 10_000 };
    const { sweep, asked } = sweepOver([quiet], clock);
    expect(sweep.look()).toBe(0); // just active
    clock.now += ENDED_SESSION_LOOK_MS;
    expect(sweep.look()).toBe(1);
    clock.now += 5 * ENDED_SESSION_LOOK_MS;
    expect(sweep.look()).toBe(0); // nothing since: not asked again
    quiet.since = clock.now; // it read or wrote: a new spell
    expect(sweep.look()).toBe(0);
    clock.now += ENDED_SESSION_LOOK_MS;
    expect(sweep.look()).toBe(1);
    expect(asked).toEqual(['quiet', 'quiet']);
  });

  it('leaves a closing session alone, and asks each quiet one', () => {
    const clock = { now: 50_000 };
    const { sweep, asked } = sweepOver([{ name: 'closing', since: undefined }, { name: 'a', since: 1_000 }, { name: 'b', since: 49_500 }, { name: 'c', since: 20_000 }], clock);
    expect(sweep.look()).toBe(2);
    expect(asked).toEqual(['a', 'c']);
  });
});
