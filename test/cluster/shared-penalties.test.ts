import { afterEach, describe, expect, it } from 'vitest';
import { PenaltyRelay, sharePenalties } from '../../src/cluster/shared-penalties.js';
import { linkedPair, type LinkedPair } from '../support/linked-pair.js';
import { until } from '../support/until.js';

describe('shared penalties: one penalty box for the cluster', () => {
  const pairs: LinkedPair[] = [];
  afterEach(() => pairs.splice(0).forEach((p) => p.close()));

  function worker(relay: PenaltyRelay) {
    const pair = linkedPair(1_000);
    pairs.push(pair);
    const detach = relay.attach(pair.primary);
    // By address: a penalty relayed while the worker was asking for the running ones may come twice (harmless: the same end).
    const received = new Map<string, number>();
    const lengths = new Map<string, number>();
    const announce = sharePenalties(pair.worker, (address, untilMs, lengthMs) => {
      received.set(address, untilMs);
      lengths.set(address, lengthMs);
    });
    return { announce, received, lengths, detach, pair };
  }
  const later = (ms: number) => Date.now() + ms;

  it("relays one worker's penalty, with its end time, to every other worker, not back to itself", async () => {
    const relay = new PenaltyRelay();
    const [a, b, c] = [worker(relay), worker(relay), worker(relay)];
    const [endA, endC] = [later(10_000), later(20_000)];
    a.announce('192.0.2.7', endA, 10_000);
    c.announce('2001:db8:1:2::/64', endC, 20_000);
    await until('both penalties relayed', () => b.received.size === 2);
    await until('c has a’s penalty', () => c.received.size === 1);
    await until('a has c’s penalty', () => a.received.size === 1);
    expect([...b.received].sort()).toEqual([['192.0.2.7', endA], ['2001:db8:1:2::/64', endC]]);
    expect([...c.received]).toEqual([['192.0.2.7', endA]]);
    expect([...a.received]).toEqual([['2001:db8:1:2::/64', endC]]);
    expect(b.lengths.get('2001:db8:1:2::/64')).toBe(20_000); // each with its length, for the next offence
  });

  it('stops relaying to and from a worker that has gone', async () => {
    const relay = new PenaltyRelay();
    const [a, b, c] = [worker(relay), worker(relay), worker(relay)];
    b.detach();
    b.announce('192.0.2.8', later(10_000), 10_000); // a gone worker's last words are not relayed
    // b's channel delivers in order: once the primary has a later message from b, it has had the first.
    const relayedLater = new Promise((resolve) => b.pair.primary.onPush('probe', resolve));
    b.pair.worker.push('probe', null);
    await relayedLater;
    const end = later(10_000);
    a.announce('192.0.2.9', end, 10_000);
    await until('c has a’s penalty', () => c.received.size === 1);
    expect([...b.received]).toEqual([]);
    expect([...c.received]).toEqual([['192.0.2.9', end]]);
  });

  it('gives a worker that starts later the penalties running or remembered, with their lengths, and not those forgotten', async () => {
    const relay = new PenaltyRelay();
    const a = worker(relay);
    const running = later(10_000);
    const over = Date.now() + 30;
    a.announce('192.0.2.10', running, 10_000);
    a.announce('192.0.2.11', over, 30); // over and forgotten (4 × 30 ms after its end) by the time the next worker starts
    a.announce('192.0.2.12', over, 10_000); // over too, but remembered for 40 s toward a repeat offence
    let kept = 0;
    const allKept = new Promise((resolve) => a.pair.primary.onPush('router.penalized', () => ++kept === 3 && setImmediate(resolve)));
    await allKept;
    await new Promise((r) => setTimeout(r, 200));
    const replacement = worker(relay);
    await until('the replacement has the running and the remembered penalty', () => replacement.received.size === 2);
    expect([...replacement.received].sort()).toEqual([['192.0.2.10', running], ['192.0.2.12', over]]);
    expect(replacement.lengths.get('192.0.2.12')).toBe(10_000);
  });
});
