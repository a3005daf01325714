import { describe, expect, it } from 'vitest';
import { ENDED_SESSION_LOOK_MS, EndedSessionSweep, LOOK_SLICES, MOST_BETWEEN_ASKS_MS } from '../../src/ingress/http2-ended-sessions.js';

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
      sessions: () => [...sessions],
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
  it('asks a session once it has been quiet for a look, then after twice as long each time, and afresh after it was active', () => {
    const clock = { now: 10_000 };
    const session: StandIn = { name: 'quiet', since: 10_000 };
    const { sweep, asked } = sweepOver([session], clock);
    const asks: number[] = [];
    for (let quiet = 0; quiet <= 16_000; quiet += ENDED_SESSION_LOOK_MS) {
      clock.now = 10_000 + quiet;
      if (sweep.look() === 1) asks.push(quiet);
    }
    // Still quiet, it is asked again (nghttp2 may have ended it since, on a frame that refreshed nothing), less and less often.
    expect(asks).toEqual([1_000, 2_000, 4_000, 8_000, 16_000]);
    session.since = clock.now; // it read or wrote
    expect(sweep.look()).toBe(0);
    clock.now += ENDED_SESSION_LOOK_MS;
    expect(sweep.look()).toBe(1);
    expect(asked).toHaveLength(6);
  });

  it('looks again at once, not later, at a session whose writes were backed up', () => {
    const clock = { now: 10_000 };
    const session: StandIn = { name: 'writing', since: 5_000, writing: true };
    const { sweep } = sweepOver([session], clock);
    expect(sweep.look()).toBe(0);
    session.writing = false;
    clock.now += ENDED_SESSION_LOOK_MS;
    expect(sweep.look()).toBe(1);
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

  it('spreads a look over its ticks, each session once a look, and begins the next look with the sessions open then', () => {
    const clock = { now: 100_000 };
    const sessions: StandIn[] = Array.from({ length: 10 }, (_, i) => ({ name: `s${i}`, since: 0 }));
    const { sweep, asked } = sweepOver(sessions, clock);
    const perTick = Array.from({ length: LOOK_SLICES }, () => sweep.tick());
    expect(perTick.reduce((a, b) => a + b, 0)).toBe(10);
    expect(Math.max(...perTick)).toBe(Math.ceil(10 / LOOK_SLICES));
    expect(new Set(asked).size).toBe(10);
    sessions.push({ name: 'new', since: 0 });
    clock.now = 200_000; // each is due again: quiet twice as long as when it was asked
    const next = Array.from({ length: LOOK_SLICES }, () => sweep.tick());
    expect(next.reduce((a, b) => a + b, 0)).toBe(11);
  });

  it('asks a long-quiet session at least every MOST_BETWEEN_ASKS_MS', () => {
    const clock = { now: 0 };
    const { sweep } = sweepOver([{ name: 'long', since: 0 }], clock);
    const asks: number[] = [];
    for (let quiet = 0; quiet <= 200_000; quiet += ENDED_SESSION_LOOK_MS) {
      clock.now = quiet;
      if (sweep.look() === 1) asks.push(quiet);
    }
    expect(asks.slice(0, 7)).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 64_000]);
    for (let i = 6; i < asks.length; i++) expect(asks[i]! - asks[i - 1]!).toBe(MOST_BETWEEN_ASKS_MS);
  });

  it('skips a session destroyed in the middle of a look, and takes the sessions of a look as they were at its start', () => {
    const clock = { now: 100_000 };
    const sessions: StandIn[] = Array.from({ length: 8 }, (_, i) => ({ name: `s${i}`, since: 0 }));
    const { sweep, asked } = sweepOver(sessions, clock);
    expect(sweep.tick()).toBe(2); // s0, s1
    sessions[5]!.since = undefined; // destroyed before its turn
    sessions.push({ name: 'late', since: 0 }); // opened during the look: the next one's
    let rest = 0;
    for (let i = 1; i < LOOK_SLICES; i++) rest += sweep.tick();
    expect(rest).toBe(5);
    expect(asked).toEqual(['s0', 's1', 's2', 's3', 's4', 's6', 's7']);
  });
});
