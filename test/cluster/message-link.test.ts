import { afterEach, describe, expect, it } from 'vitest';
import { MessageLink } from '../../src/cluster/message-link.js';
import { linkedPair, type LinkedPair } from '../support/linked-pair.js';

describe('MessageLink', () => {
  let pair: LinkedPair;
  afterEach(() => pair.close());

  it('answers a call with the handler result, structured-cloned (Maps and Sets survive)', async () => {
    pair = linkedPair();
    pair.primary.handle('lookup', (org: string) => new Map([[org, new Set(['atl', 'fra'])]]));
    const value = await pair.worker.call<Map<string, Set<string>>>('lookup', ['acme']);
    expect(value).toEqual(new Map([['acme', new Set(['atl', 'fra'])]]));
  });

  it('calls go both ways on one link', async () => {
    pair = linkedPair();
    pair.worker.handle('whoami', () => 'worker');
    pair.primary.handle('whoami', async () => 'primary');
    expect(await pair.primary.call('whoami')).toBe('worker');
    expect(await pair.worker.call('whoami')).toBe('primary');
  });

  it('sends a thrown error back as the rejection, and names a method nobody handles', async () => {
    pair = linkedPair();
    pair.primary.handle('explode', () => {
      throw new Error('registry is closed');
    });
    await expect(pair.worker.call('explode')).rejects.toThrow('registry is closed');
    await expect(pair.worker.call('missing')).rejects.toThrow('no handler for missing');
  });

  it('gives up on a call nobody answers within the timeout', async () => {
    pair = linkedPair();
    pair.primary.handle('never', () => new Promise(() => undefined));
    await expect(pair.worker.call('never', [], 50)).rejects.toThrow('never: no answer within 50 ms');
  });

  it('rejects the calls still waiting when it closes, and refuses new ones', async () => {
    pair = linkedPair();
    pair.primary.handle('never', () => new Promise(() => undefined));
    const waiting = pair.worker.call('never');
    pair.worker.close();
    await expect(waiting).rejects.toThrow('the link closed before the answer came');
    await expect(pair.worker.call('never')).rejects.toThrow('the link is closed');
  });

  it('turns a channel that cannot send into a rejection, not a throw', async () => {
    const link = new MessageLink({
      send() {
        throw new Error('no channel to the cluster primary');
      },
      listen: () => () => undefined,
    });
    await expect(link.call('anything')).rejects.toThrow('anything: no channel to the cluster primary');
    expect(() => link.push('topic', 1)).not.toThrow();
  });

  it('delivers pushes to the listeners of their topic only, until they stop listening', async () => {
    pair = linkedPair();
    const seen: unknown[] = [];
    const stop = pair.worker.onPush('registry.change', (p) => seen.push(p));
    pair.worker.onPush('other', () => seen.push('wrong topic'));
    pair.primary.push('registry.change', { kind: 'overrides' });
    await expect.poll(() => seen).toEqual([{ kind: 'overrides' }]);
    stop();
    pair.primary.push('registry.change', { kind: 'functions' });
    // A round trip after the push: if it were delivered it would have arrived first.
    pair.primary.handle('ping', () => 'pong');
    await pair.worker.call('ping');
    expect(seen).toEqual([{ kind: 'overrides' }]);
  });

  it('ignores messages that are not its own (node:cluster and prom-client share the channel)', async () => {
    let deliver: (m: unknown) => void = () => undefined;
    const link = new MessageLink({ send: () => undefined, listen: (l) => ((deliver = l), () => undefined) });
    expect(() => {
      deliver({ type: 'prom-client:getMetricsReq', requestId: 1 });
      deliver(null);
      deliver('text');
    }).not.toThrow();
    link.close();
  });
});
