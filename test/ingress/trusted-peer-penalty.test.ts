/**
 * Penalties are kept under an address's limit key: an IPv6 client's /64. A trusted proxy sharing
 * its /64 with a client that flooded (a VPS provider's shared prefix, addresses announced over the
 * PROXY protocol) is not that client: its connections are neither refused nor closed, or every
 * client behind it would be turned away for the penalty's length.
 */
import { connect as connectH2, type ClientHttp2Session } from 'node:http2';
import { connect as connectTls } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { limitKeyOf } from '../../src/core/ip.js';
import { answer, startPublicListeners, type StartedListeners } from '../support/public-listeners.js';

const started: StartedListeners[] = [];
const sessions: ClientHttp2Session[] = [];
afterEach(async () => {
  for (const session of sessions.splice(0)) session.destroy();
  for (const { servers } of started.splice(0)) servers.forceClose();
});

async function listeners(exempt: boolean): Promise<StartedListeners> {
  const listening = await startPublicListeners((_req, res) => answer(res, 200, 'ok'), { bindAddress: '::1', ...(exempt ? { exemptPeer: (ip: string) => ip === '::1' } : {}) });
  started.push(listening);
  return listening;
}

function openSession(port: number): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = connectH2(`https://[::1]:${port}`, { rejectUnauthorized: false });
    sessions.push(session);
    session.once('connect', () => resolve(session));
    session.once('error', reject);
  });
}

function statusOver(session: ClientHttp2Session): Promise<number> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':path': '/', ':authority': 'echo-demo.telnyxcompute.com' });
    stream.once('response', (headers) => resolve(Number(headers[':status'])));
    stream.once('error', reject);
    stream.resume();
    stream.end();
  });
}

/** Whether a fresh TLS connection from ::1 gets through the handshake (a refused one is closed at accept). */
function handshakes(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connectTls({ host: '::1', port, rejectUnauthorized: false, servername: 'echo-demo.telnyxcompute.com' });
    socket.once('secureConnect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('close', () => resolve(false));
  });
}

describe('a penalty on the /64 a trusted peer shares', () => {
  it('neither refuses the trusted peer\'s new connections nor closes its open ones', async () => {
    const { servers, https } = await listeners(true);
    const open = await openSession(https);
    expect(await statusOver(open)).toBe(200);
    servers.penalizeAddress(limitKeyOf('::1'), Date.now() + 10_000, 10_000);
    await new Promise((resolve) => setTimeout(resolve, 100)); // the sessions of a penalized key are closed on the next turn
    expect(open.closed || open.destroyed).toBe(false);
    expect(await statusOver(open)).toBe(200);
    expect(await handshakes(https)).toBe(true);
  });

  it('refuses and closes an untrusted peer under it (the test can tell)', async () => {
    const { servers, https } = await listeners(false);
    const open = await openSession(https);
    expect(await statusOver(open)).toBe(200);
    const closed = new Promise<void>((resolve) => open.once('close', resolve));
    servers.penalizeAddress(limitKeyOf('::1'), Date.now() + 10_000, 10_000);
    await closed;
    expect(await handshakes(https)).toBe(false);
  });
});
