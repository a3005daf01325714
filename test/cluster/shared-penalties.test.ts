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
    const received: string[] = [];
    const announce = sharePenalties(pair.worker, (address) => received.push(address));
    return { announce, received, detach };
  }

  it("relays one worker's penalty to every other worker, not back to itself", async () => {
    const relay = new PenaltyRelay();
    const [a, b, c] = [worker(relay), worker(relay), worker(relay)];
    a.announce('192.0.2.7');
    c.announce('2001:db8:1:2::/64');
    await until('both penalties relayed', () => b.received.length === 2);
    await until('c has a’s penalty', () => c.received.length === 1);
    await until('a has c’s penalty', () => a.received.length === 1);
    expect(b.received.sort()).toEqual(['192.0.2.7', '2001:db8:1:2::/64']);
    expect(c.received).toEqual(['192.0.2.7']);
    expect(a.received).toEqual(['2001:db8:1:2::/64']);
  });

  it('stops relaying to and from a worker that has gone', async () => {
    const relay = new PenaltyRelay();
    const [a, b, c] = [worker(relay), worker(relay), worker(relay)];
    b.detach();
    b.announce('192.0.2.8'); // a gone worker's last words are not relayed
    // b's channel delivers in order: once the primary has a later message from b, it has had the first.
    const relayedLater = new Promise((resolve) => pairs[1]!.primary.onPush('probe', resolve));
    pairs[1]!.worker.push('probe', null);
    await relayedLater;
    a.announce('192.0.2.9');
    await until('c has a’s penalty', () => c.received.includes('192.0.2.9'));
    expect(b.received).toEqual([]);
    expect(c.received).toEqual(['192.0.2.9']);
  });
});
