/**
 * The drain closes the public listeners, and Node's server.close() first closes the server's idle
 * connections by Node's rule: an HTTP/1.1 answer that has ended counts as idle though it still
 * waits in the socket's buffer behind a client that reads slowly, and the connection was destroyed,
 * the client's body short of its length (found by review). The listeners alone, with a handler
 * that hands the whole answer to the socket at once: the router's own answers end only once their
 * region's last bytes are written, so their end can wait in the buffer too, but not on cue.
 */
import type { ServerResponse } from 'node:http';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { HOST } from '../support/clients.js';
import { startPublicListeners, type StartedListeners } from '../support/public-listeners.js';
import { until } from '../support/until.js';

const BODY = 16 * 1024 * 1024; // far more than the loopback's buffers hold: most of it waits in the socket's
let listeners: StartedListeners | undefined;
afterEach(() => listeners?.servers.forceClose());

describe('the drain and HTTP/1.1 answers still leaving', () => {
  it.each(['https', 'http'] as const)('lets an ended answer waiting behind a client that reads slowly go out before the connection closes (%s)', async (scheme) => {
    let ended = false;
    listeners = await startPublicListeners(
      (_req, res) => {
        (res as ServerResponse).writeHead(200, { 'content-length': String(BODY) }).end(Buffer.alloc(BODY, 0x61));
        ended = true;
      },
      { plainHttp: 'serve' },
    );
    const socket = scheme === 'https'
      ? tlsConnect({ port: listeners.https, host: '127.0.0.1', servername: HOST, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] })
      : netConnect({ port: listeners.http, host: '127.0.0.1' });
    socket.on('error', () => undefined);
    const chunks: Buffer[] = [];
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.once(scheme === 'https' ? 'secureConnect' : 'connect', () => {
      socket.pause(); // the slow network: nothing read until the drain has begun
      socket.write(`GET /big HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
    });
    await until('the answer ended', () => ended);
    listeners.servers.beginDrain();
    await new Promise((resolve) => setTimeout(resolve, 300));
    socket.resume();
    await closed;
    const received = Buffer.concat(chunks);
    const headEnd = received.indexOf('\r\n\r\n');
    expect(received.subarray(0, headEnd).toString('latin1')).toMatch(/^HTTP\/1\.1 200 /);
    expect(received.length - headEnd - 4).toBe(BODY);
  });
});
