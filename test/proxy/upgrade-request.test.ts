import { createServer, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { Pool } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { requestUpgrade } from '../../src/proxy/upgrade-request.js';
import { until } from '../support/until.js';

const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

/**
 * A region that answers an upgrade `headAfterMs` late with an event stream instead of switching,
 * a heartbeat every 100 ms for 5 s; `closed` says when the router let its connection go.
 */
async function lateStreamingRegion(headAfterMs: number): Promise<{ pool: Pool; closed: () => boolean }> {
  let closed = false;
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    const timers: NodeJS.Timeout[] = [];
    socket.once('data', () => {
      timers.push(setTimeout(() => {
        socket.write('HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n');
        const beat = setInterval(() => socket.write('3\r\n:\n\n\r\n'), 100);
        timers.push(beat, setTimeout(() => clearInterval(beat), 5_000));
      }, headAfterMs));
    });
    socket.on('close', () => {
      closed = true;
      for (const timer of timers) clearTimeout(timer);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const pool = new Pool(`http://127.0.0.1:${(server.address() as { port: number }).port}`);
  cleanup.push(async () => {
    await pool.destroy();
    for (const socket of sockets) socket.destroy();
    server.close();
  });
  return { pool, closed: () => closed };
}

describe('requestUpgrade', () => {
  it('ends an attempt with no head at its deadline, even while undici\'s own headers timeout has not fired', async () => {
    // undici's headers timeout (here far off, as its coarse clock can leave it up to half a second
    // late) took a head that came after the deadline, and nothing then bounded the answer's body
    // but its size: the heartbeats held the region, and the client, for their whole 5 s.
    const { pool, closed } = await lateStreamingRegion(400);
    const pending = requestUpgrade(pool, { path: '/ws', headers: ['host', 'fn-org.example.com'], protocol: 'websocket', headersTimeoutMs: 60_000, answerTimeoutMs: 200 });
    const outcome = await Promise.race([
      pending.result.then(
        (result) => `settled: ${result.kind}`,
        (err: unknown) => (err as { code?: string }).code,
      ),
      new Promise((resolve) => setTimeout(() => resolve('unsettled after 2 s'), 2_000)),
    ]);
    expect(outcome).toBe('UND_ERR_HEADERS_TIMEOUT');
    await until('the region\'s connection is let go', closed, 2_000);
  });
});
