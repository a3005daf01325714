/**
 * The admin listener as the router sets it up (edge-router.ts): the bounds a client that is not
 * an operator meets before any token is looked at.
 */
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRouter, type TestRouter } from '../support/router.js';

let router: TestRouter;
const sockets: Socket[] = [];
beforeAll(async () => {
  router = await startTestRouter({}, ['--client-header-timeout', '1000'], { EDGE_ADMIN_TOKEN: 'admin-listener-test-token-0123456789' }, []);
}, 30_000);
afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  await router?.close();
});

async function openSilent(count: number): Promise<Socket[]> {
  const opened: Socket[] = [];
  for (let i = 0; i < count; i++) {
    const socket = connect(router.adminPort, '127.0.0.1');
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
    const [silent] = await openSilent(1);
    const closed = once(silent!, 'close').then(() => true);
    expect(await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 5_000, false))])).toBe(true);
  }, 15_000);

  it('holds a bounded number of connections, whoever opens them', async () => {
    // The public listeners cap theirs (--max-connections, --max-conns-per-ip); the admin one took any number.
    const opened = await openSilent(300);
    await expect.poll(() => stillOpen(opened), { timeout: 3_000, interval: 50 }).toBeLessThanOrEqual(256); // ADMIN_MAX_CONNECTIONS
    for (const socket of opened) socket.destroy();
  }, 15_000);
});
