/**
 * The admin listener as the router sets it up (edge-router.ts): the bounds a client that is not
 * an operator meets before any token is looked at.
 */
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, request } from 'undici';
import { ADMIN_MAX_CONNECTIONS, ADMIN_MAX_CONNECTIONS_PER_ADDRESS } from '../../src/edge-router.js';
import { startTestRouter, type TestRouter } from '../support/router.js';

// Two routers: one whose header timeout (1 s) the first test watches close a silent connection,
// and one where silent connections stay (60 s), so that only the caps can bring their number
// down: with 1 s, every connection was closed within the bound tests' polls, and "at most 256
// open" held with no cap at all (found by review).
let quick: TestRouter;
let router: TestRouter;
const sockets: Socket[] = [];
beforeAll(async () => {
  const env = { EDGE_ADMIN_TOKEN: 'admin-listener-test-token-0123456789' };
  [quick, router] = await Promise.all([
    startTestRouter({}, ['--client-header-timeout', '1000'], env, []),
    startTestRouter({}, ['--client-header-timeout', '60000'], env, []),
  ]);
}, 30_000);
afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  await Promise.all([quick?.close(), router?.close()]);
});

async function openSilent(count: number, localAddress = '127.0.0.1', on = router): Promise<Socket[]> {
  const opened: Socket[] = [];
  for (let i = 0; i < count; i++) {
    const socket = connect({ port: on.adminPort, host: '127.0.0.1', localAddress });
    socket.on('error', () => undefined);
    socket.resume(); // so the server's close (and its 408) is seen
    sockets.push(socket);
    opened.push(socket);
  }
  await Promise.all(opened.map((s) => once(s, 'connect')));
  return opened;
}
const stillOpen = (list: Socket[]) => list.filter((s) => !s.destroyed && !s.readableEnded).length;

describe('admin listener', () => {
  it('closes a connection that sends no request head within --client-header-timeout, as the public listeners do', async () => {
    // Node's default is 60 s (checked every 30 s): a client holding connections open for free.
    const [silent] = await openSilent(1, '127.0.0.1', quick);
    const closed = once(silent!, 'close').then(() => true);
    expect(await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 5_000, false))])).toBe(true);
  }, 15_000);

  it('holds a bounded number of connections, whoever opens them', async () => {
    // The public listeners cap theirs (--max-connections, --max-conns-per-ip); the admin one took any number.
    const opened = (await Promise.all(Array.from({ length: 10 }, (_, i) => openSilent(30, `127.0.7.${i + 1}`)))).flat();
    await expect.poll(() => stillOpen(opened), { timeout: 3_000, interval: 50 }).toBe(ADMIN_MAX_CONNECTIONS);
    // And it stays there: nothing but the cap closed the others.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(stillOpen(opened)).toBe(ADMIN_MAX_CONNECTIONS);
    for (const socket of opened) socket.destroy();
  }, 15_000);

  it('lets one address hold its share of the connections and no more', async () => {
    const opened = await openSilent(ADMIN_MAX_CONNECTIONS_PER_ADDRESS + 8, '127.0.8.1');
    await expect.poll(() => stillOpen(opened), { timeout: 3_000, interval: 50 }).toBe(ADMIN_MAX_CONNECTIONS_PER_ADDRESS);
    for (const socket of opened) socket.destroy();
  }, 15_000);

  it('still answers probes while silent connections from many addresses fill it: a newcomer takes the place of the quietest', async () => {
    // Seen in review: 256 connections that never sent a byte, reopened as the header timeout
    // closed them, had every probe after them closed on arrival (liveness failing: a restart).
    const per = ADMIN_MAX_CONNECTIONS_PER_ADDRESS;
    const opened = (await Promise.all(Array.from({ length: Math.ceil(ADMIN_MAX_CONNECTIONS / per) + 1 }, (_, i) => openSilent(per, `127.0.9.${i + 1}`)))).flat();
    await expect.poll(() => stillOpen(opened), { timeout: 3_000, interval: 50 }).toBe(ADMIN_MAX_CONNECTIONS);
    const prober = new Agent({ localAddress: '127.0.10.1' });
    for (let i = 0; i < 3; i++) {
      const probe = await request(`http://127.0.0.1:${router.adminPort}/healthz`, { dispatcher: prober, headers: { connection: 'close' } });
      expect(probe.statusCode).toBe(200);
      await probe.body.text();
    }
    await prober.close();
    expect(stillOpen(opened)).toBeLessThan(ADMIN_MAX_CONNECTIONS);
    for (const socket of opened) socket.destroy();
  }, 15_000);
});
