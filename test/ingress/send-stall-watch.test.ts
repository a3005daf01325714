import { monotonicNow } from '../../src/core/monotonic-clock.js';
import { once } from 'node:events';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { closedAsStalled, nextStallMark, SendStallWatch } from '../../src/ingress/send-stall-watch.js';
import { board } from '../../src/proxy/connection-riders.js';
import { until } from '../support/until.js';

describe('nextStallMark', () => {
  it('forgets a socket with nothing waiting', () => {
    expect(nextStallMark(undefined, 0, 0, 1_000)).toBeUndefined();
    expect(nextStallMark({ sent: 10, sinceMs: 0 }, 0, 0, 1_000)).toBeUndefined();
  });

  it('starts counting when bytes wait, and again whenever some went out', () => {
    expect(nextStallMark(undefined, 500, 10, 1_000)).toEqual({ sent: 10, sinceMs: 1_000 });
    expect(nextStallMark({ sent: 10, sinceMs: 1_000 }, 500, 70, 2_000)).toEqual({ sent: 70, sinceMs: 2_000 });
  });

  it('keeps the mark while nothing moves, however much more is queued', () => {
    const mark = { sent: 10, sinceMs: 1_000 };
    expect(nextStallMark(mark, 900, 10, 5_000)).toBe(mark);
  });
});

describe('SendStallWatch over real sockets', () => {
  const closers: Array<() => void> = [];
  afterEach(() => {
    for (const close of closers.splice(0)) close();
  });

  /** A connected pair on loopback: the server's end (watched) and the client's, paused (reads nothing). */
  async function pair(): Promise<{ server: Socket; client: Socket }> {
    const listener: Server = createServer();
    listener.listen(0, '127.0.0.1');
    await once(listener, 'listening');
    const accepted = once(listener, 'connection');
    const client = connect((listener.address() as { port: number }).port, '127.0.0.1');
    client.pause();
    const [server] = (await accepted) as [Socket];
    server.on('error', () => undefined);
    client.on('error', () => undefined);
    closers.push(() => {
      server.destroy();
      client.destroy();
      listener.close();
    });
    return { server, client };
  }

  /** A watch of `socket` (timeout 1 s) whose sweeps the test runs itself, with the clock it chooses. */
  function watching(socket: Socket): SendStallWatch {
    const watch = new SendStallWatch({ timeoutMs: 1_000, everyMs: 60_000 });
    closers.push(() => watch.stop());
    watch.watch(socket);
    return watch;
  }

  /** Writes until the kernel takes no more and bytes wait in the socket's own buffer. */
  async function fill(server: Socket): Promise<void> {
    const chunk = Buffer.alloc(256 * 1024, 0x61);
    for (let i = 0; i < 400 && server.writableLength === 0; i++) {
      server.write(chunk);
      await new Promise((r) => setImmediate(r));
    }
    expect(server.writableLength).toBeGreaterThan(0);
  }

  it('closes a connection whose client takes nothing for the timeout, and only then', async () => {
    const { server } = await pair();
    const watch = watching(server);
    // A request pipelined behind what waits: its client did not close the connection, the router did.
    const told: boolean[] = [];
    board(server, { connectionClosed: (byRouter) => void told.push(byRouter) });
    await fill(server);
    watch.sweep(10_000);
    watch.sweep(10_900);
    expect(server.destroyed).toBe(false);
    watch.sweep(11_001);
    expect(server.destroyed).toBe(true);
    expect(closedAsStalled(server)).toBe(true);
    expect(watch.closed).toBe(1);
    expect(watch.watching).toBe(0);
    await once(server, 'close');
    expect(told).toEqual([true]);
  });

  it('keeps a connection whose client reads, however slowly', async () => {
    const slow = await pair();
    const watch = watching(slow.server);
    await fill(slow.server);
    let now = 10_000;
    watch.sweep(now);
    // The client takes a little between looks: the kernel takes more, a write completes. Each
    // look comes 900 ms after the last, 4.5 s in all: past the timeout, never a second without progress.
    for (let look = 0; look < 5; look++) {
      if (slow.server.writableLength === 0) await fill(slow.server); // it took everything: give it more to be slow with
      const sentBefore = slow.server.bytesWritten - slow.server.writableLength;
      slow.client.resume();
      await until('a write completed', () => slow.server.bytesWritten - slow.server.writableLength !== sentBefore || slow.server.writableLength === 0);
      slow.client.pause();
      if (slow.server.writableLength === 0) await fill(slow.server);
      now += 900;
      watch.sweep(now);
      expect(slow.server.destroyed).toBe(false);
    }
    expect(watch.closed).toBe(0);
  });

  it('keeps a connection with nothing waiting, however long it is quiet', async () => {
    const idle = await pair();
    const watch = watching(idle.server);
    idle.server.write('a few bytes the kernel takes at once');
    await until('written', () => idle.server.writableLength === 0);
    watch.sweep(10_000);
    watch.sweep(20_000);
    expect(idle.server.destroyed).toBe(false);
    expect(watch.closed).toBe(0);
    expect(closedAsStalled(idle.server)).toBe(false);
  });

  it('forgets a connection when it closes, and stops looking when none is left', async () => {
    const { server } = await pair();
    const watch = watching(server);
    expect(watch.watching).toBe(1);
    server.destroy();
    await once(server, 'close');
    expect(watch.watching).toBe(0);
    watch.sweep(monotonicNow());
    expect(watch.closed).toBe(0);
  });
});
