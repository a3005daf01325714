import { describe, expect, it } from 'vitest';
import { ENDED_SESSION_LOOK_MS, EndedSessionSweep } from '../../src/ingress/http2-ended-sessions.js';

interface StandIn {
  readonly name: string;
  /** Its last activity; undefined: destroyed. */
  since: number | undefined;
  /** Bytes waiting to be written on its socket: not asked. */
  writing?: boolean;
}

function sweepOver(sessions: StandIn[], clock: { now: number }) {
  const asked: string[] = [];
  const sweep = new EndedSessionSweep<StandIn>(
    {
      sessions: () => sessions,
      quietSince: (s) => s.since,
      readAgain: (s) => {
        if (s.writing === true) return false;
        asked.push(s.name);
        return true;
      },
    },
    () => clock.now,
  );
  return { sweep, asked };
}

describe('HTTP/2 sessions nghttp2 may have ended: which are asked to read again', () => {
  it('asks a session once it has been quiet for a look, and again at every look while it stays quiet', () => {
    const clock = { now: 10_000 };
    const session: StandIn = { name: 'quiet', since: 10_000 };
    const { sweep, asked } = sweepOver([session], clock);
    expect(sweep.look()).toBe(0); // just active
    clock.now += ENDED_SESSION_LOOK_MS;
    expect(sweep.look()).toBe(1);
    // Still quiet: nghttp2 may have ended it since, on a frame that refreshed nothing.
    clock.now += ENDED_SESSION_LOOK_MS;
    expect(sweep.look()).toBe(1);
    session.since = clock.now; // it read or wrote
    expect(sweep.look()).toBe(0);
    expect(asked).toEqual(['quiet', 'quiet']);
  });

  it('leaves a destroyed session alone, and counts only those asked (not one whose writes are backed up)', () => {
    const clock = { now: 50_000 };
    const { sweep, asked } = sweepOver(
      [
        { name: 'destroyed', since: undefined },
        { name: 'a', since: 1_000 },
        { name: 'busy', since: 49_500 },
        { name: 'writing', since: 2_000, writing: true },
        { name: 'c', since: 20_000 },
      ],
      clock,
    );
    expect(sweep.look()).toBe(2);
    expect(asked).toEqual(['a', 'c']);
  });
});
