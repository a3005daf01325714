import { once } from 'node:events';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { collectEarlyBytes } from '../../src/ingress/early-bytes.js';
import { until } from '../support/until.js';

const cleanup: Array<() => void> = [];
afterEach(() => {
  for (const fn of cleanup.splice(0).reverse()) fn();
});

/** A loopback connection: the server's side (as the router holds an upgraded socket, half-open allowed) and the client's. */
async function socketPair(): Promise<{ server: Socket; client: Socket }> {
  const listener: Server = createServer({ allowHalfOpen: true });
  cleanup.push(() => listener.close());
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  const accepted = once(listener, 'connection');
  const client = connect({ port: (listener.address() as { port: number }).port, host: '127.0.0.1', allowHalfOpen: true });
  const [server] = (await accepted) as [Socket];
  cleanup.push(() => client.destroy(), () => server.destroy());
  return { server, client };
}

describe('collectEarlyBytes', () => {
  it('keeps the head and what follows it, in order, and sees a FIN sent after them', async () => {
    const { server, client } = await socketPair();
    const early = collectEarlyBytes(server, Buffer.from('head|'));
    let ended = false;
    server.once('end', () => (ended = true));
    client.end('one|two');
    // Unread, the bytes hid the FIN: 'end' came only once they were read (the upgrade's gap).
    await until('the FIN seen', () => ended, 2_000);
    expect(early.take().toString()).toBe('head|one|two');
  });

  it('stops reading at its bound, leaving the rest to the socket, and hands everything on in order', async () => {
    const { server, client } = await socketPair();
    const bound = 4 * 1024;
    const early = collectEarlyBytes(server, Buffer.alloc(0), bound);
    const sent = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < sent.length; i++) sent[i] = i % 251;
    client.write(sent);
    await until('reading stopped', () => server.isPaused(), 2_000);
    const kept = early.take();
    // One chunk may carry it past the bound; not the megabyte.
    expect(kept.length).toBeGreaterThanOrEqual(bound);
    expect(kept.length).toBeLessThan(sent.length);
    expect(server.isPaused()).toBe(true); // left paused for the tunnel's reader
    const rest: Buffer[] = [];
    server.on('data', (d: Buffer) => rest.push(d));
    server.resume(); // as the tunnel's pipe() does
    await until('the rest read', () => kept.length + rest.reduce((n, d) => n + d.length, 0) === sent.length, 5_000);
    expect(Buffer.concat([kept, ...rest]).equals(sent)).toBe(true);
  });

  it('reads nothing when the head alone reaches the bound', async () => {
    const { server, client } = await socketPair();
    const early = collectEarlyBytes(server, Buffer.from('a full head'), 4);
    client.write('more');
    await new Promise((resolve) => setTimeout(resolve, 100)); // time for 'more' to arrive, had it been read
    expect(early.take().toString()).toBe('a full head');
    let rest = '';
    server.on('data', (d: Buffer) => (rest += d.toString()));
    server.resume();
    await until('the next reader has it', () => rest === 'more', 2_000);
  });
});
