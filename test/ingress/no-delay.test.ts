/**
 * Nagle's algorithm is off on every public connection from accept, as nginx's tcp_nodelay and
 * Node's own http and https servers have it. Node's HTTP/2 server (the TLS listener, HTTP/1.1
 * included through ALPN) turns it off only for a connection that becomes an HTTP/2 session, once
 * its handshake is over; then the first answer on a new HTTPS/1.1 connection, a small write after
 * the handshake's session tickets, waited for the client's delayed ACK: 40–48 ms on five of eight
 * fresh connections measured with curl (docs/performance-notes.md).
 *
 * Node keeps the setting only on the socket, under its private `kSetNoDelay` symbol (Node 20): the
 * test reads that, on the raw connection each listener admitted, and fails loudly if Node moves it.
 */
import type { Socket } from 'node:net';
import { request as plainRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { PublicServers } from '../../src/ingress/public-servers.js';
import { agentFor, get, getH2 } from '../support/clients.js';
import { answer, startPublicListeners, type StartedListeners } from '../support/public-listeners.js';

type Admit = (this: PublicServers, socket: Socket) => boolean;

function nagleOff(socket: Socket): boolean {
  const key = Object.getOwnPropertySymbols(socket).find((s) => s.description === 'kSetNoDelay');
  if (key === undefined) throw new Error("Node no longer keeps 'kSetNoDelay' on a socket: read the no-delay setting some other way");
  return (socket as unknown as Record<symbol, unknown>)[key] === true;
}

describe("Nagle's algorithm on the public listeners", () => {
  let listeners: StartedListeners;
  /** Each connection a listener admitted (before TLS), in order: each test reads the one its own request opened, the last. */
  const admitted: Socket[] = [];

  beforeAll(async () => {
    const admit = (PublicServers.prototype as unknown as { admit: Admit }).admit;
    vi.spyOn(PublicServers.prototype as unknown as { admit: Admit }, 'admit').mockImplementation(function (this: PublicServers, socket) {
      admitted.push(socket);
      return admit.call(this, socket);
    });
    listeners = await startPublicListeners((_req, res) => answer(res, 200, 'ok'), { plainHttp: 'serve' });
  });
  afterAll(async () => {
    vi.restoreAllMocks();
    listeners?.servers.forceClose();
  });

  const lastAdmitted = (): Socket => {
    expect(admitted.length).toBeGreaterThan(0);
    return admitted.at(-1)!;
  };

  it('is off on a plain HTTP/1.1 connection', async () => {
    const status = await new Promise<number | undefined>((resolve, reject) => {
      plainRequest({ host: '127.0.0.1', port: listeners.http, path: '/', headers: { host: 'echo-demo.telnyxcompute.com' }, agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      })
        .on('error', reject)
        .end();
    });
    expect(status).toBe(200);
    expect(nagleOff(lastAdmitted())).toBe(true);
  });

  it('is off on an HTTP/1.1 connection over TLS', async () => {
    const agent = agentFor(listeners.https);
    try {
      expect((await get(agent, listeners.https, '/')).status).toBe(200);
    } finally {
      await agent.close();
    }
    expect(nagleOff(lastAdmitted())).toBe(true);
  });

  // An HTTP/2 session would turn it off on its own, but only after the handshake.
  it('is off from accept on a connection that becomes HTTP/2', async () => {
    const answer = await getH2(listeners.https, '/');
    expect([answer.alpn, answer.headers[':status']]).toEqual(['h2', 200]);
    expect(nagleOff(lastAdmitted())).toBe(true);
  });
});
