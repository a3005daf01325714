/**
 * HTTP/2 connection errors that nghttp2 answers on its own: it sends GOAWAY and stops reading and
 * writing the session, but Node is not told, and keeps the connection and its streams. Whatever the
 * client does next, the router must still let go of them within its own bounds.
 */
import type { IncomingMessage, Server } from 'node:http';
import { connect as http2Connect } from 'node:http2';
import type { Duplex } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { getH2, HOST } from '../support/clients.js';
import { ADMIN_TOKEN, Cleanup, H2_FLAG, H2_FRAME, h2Frame, hpackGet, hpackLiteral, hpackNewField, largeBody, openConnectionsAt, openRawH2 } from '../support/hostile.js';
import { echo, TestOrigin } from '../support/origin.js';
import { startTestRouter } from '../support/router.js';
import { until } from '../support/until.js';
import type { ResolvedRouter } from '../../src/cli/router-command.js';
import { webSocketAccept } from '../support/websocket-origin.js';

const cleanup = new Cleanup();
afterEach(cleanup.run);

/** An idle timeout of HTTP/2 connections of 600 ms instead of 60 s. */
const shortIdle = (r: ResolvedRouter): ResolvedRouter => ({ ...r, config: { ...r.config, limits: { ...r.config.limits, keepAliveTimeoutMs: 50, headersTimeoutMs: 100, http2IdleTimeoutMs: 600 } } });

/** HEADERS with END_STREAM for `path`, and in the same write DATA on that stream, which the client has closed: nghttp2 ends the session (GOAWAY STREAM_CLOSED). */
const closedThenData = (streamId: number, path: string) =>
  Buffer.concat([h2Frame(H2_FRAME.HEADERS, H2_FLAG.END_STREAM | H2_FLAG.END_HEADERS, streamId, hpackGet(path)), h2Frame(H2_FRAME.DATA, 0, streamId, Buffer.from('x'))]);

describe('hostile clients: HTTP/2 connection errors', () => {
  it('closes a connection whose session nghttp2 ended (DATA on a stream the client had closed) while a stream of it was still being answered', async () => {
    // Seen in review: HEADERS with END_STREAM then DATA on that stream, in one write, make nghttp2
    // send GOAWAY STREAM_CLOSED and stop the session; the stream's answer never leaves, its reset
    // (RST_STREAM CANCEL after --send-timeout) is never sent either and the stream never closes,
    // so the idle timeout's graceful close waited for it for ever: the connection, its slot of
    // --max-conns-per-ip and --max-connections, and the stream were held as long as the client liked.
    const fra = await TestOrigin.start('fra');
    // An idle timeout of 600 ms instead of 60 s.
    const router = await startTestRouter({ fra: fra.url, nyc: fra.url }, ['--send-timeout', '1000'], {}, undefined, shortIdle);
    cleanup.add(() => fra.kill(), () => router.close());
    const attacker = await openRawH2(router.httpsPort, { reading: true });
    cleanup.add(() => attacker.socket.destroy());
    await attacker.send(closedThenData(1, '/closed-then-data'));
    await expectClosedAndStillServing(attacker, router.httpsPort);
  }, 20_000);

  it('closes such a connection that also carried a WebSocket tunnel, once the tunnel is cut', async () => {
    // A connection carrying a tunnel is spared by the idle timeout; once the tunnel's idle cut has
    // closed it, the stream nghttp2 left unanswered must not keep the connection either.
    const fra = await TestOrigin.start('fra');
    (fra as unknown as { server: Server }).server.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
      const accept = webSocketAccept(req.headers['sec-websocket-key']);
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
      socket.on('error', () => undefined);
    });
    const router = await startTestRouter({ fra: fra.url, nyc: fra.url }, ['--send-timeout', '1000', '--websocket-idle-timeout', '1000'], {}, undefined, shortIdle);
    cleanup.add(() => fra.kill(), () => router.close());
    const attacker = await openRawH2(router.httpsPort, { reading: true });
    cleanup.add(() => attacker.socket.destroy());
    // Extended CONNECT is allowed once the client acknowledged the router's SETTINGS (RFC 8441 §3).
    await until("the router's SETTINGS", () => attacker.frames.some((f) => f.type === H2_FRAME.SETTINGS && (f.flags & 0x1) === 0));
    await attacker.send(h2Frame(H2_FRAME.SETTINGS, 0x1, 0));
    const connect = Buffer.concat([
      Buffer.from([0x02, 7]), Buffer.from('CONNECT'), // :method CONNECT (literal, name from the static table)
      hpackNewField(':protocol', 'websocket'),
      Buffer.from([0x87]), // :scheme https
      hpackLiteral(0x04, '/ws'),
      hpackLiteral(0x01, HOST),
      hpackNewField('sec-websocket-version', '13'),
    ]);
    await attacker.send(h2Frame(H2_FRAME.HEADERS, H2_FLAG.END_HEADERS, 1, connect));
    await until('the tunnel is open', () => attacker.frames.some((f) => f.type === H2_FRAME.HEADERS && f.streamId === 1));
    await attacker.send(closedThenData(3, '/closed-then-data'));
    await expectClosedAndStillServing(attacker, router.httpsPort);
  }, 20_000);
});

describe('hostile clients: HTTP/2 sessions nghttp2 ended, whose client then left', () => {
  // nghttp2 sends GOAWAY and reads no more; Node, told nothing, stopped reading the socket and so
  // never saw the client go: each connection was held until the idle timeout (60 s here).
  const badBlock = h2Frame(H2_FRAME.HEADERS, H2_FLAG.END_STREAM | H2_FLAG.END_HEADERS, 1, Buffer.from([0xff, 0xff, 0xff, 0x0f]));
  const errors: Array<{ name: string; bytes: Buffer; quietFirstMs?: number }> = [
    { name: 'a header block it cannot decode (COMPRESSION_ERROR)', bytes: badBlock },
    // Quiet long enough to have been looked at while still live: it must be looked at again.
    { name: 'the same, sent after 2.5 s of quiet', bytes: badBlock, quietFirstMs: 2_500 },
    { name: 'a frame longer than allowed (FRAME_SIZE_ERROR)', bytes: Buffer.from([0xff, 0xff, 0xff, H2_FRAME.DATA, 0, 0, 0, 0, 1, 1, 2, 3]) },
    { name: 'a stream id a client may not use (PROTOCOL_ERROR)', bytes: h2Frame(H2_FRAME.HEADERS, H2_FLAG.END_STREAM | H2_FLAG.END_HEADERS, 2, hpackGet('/even')) },
    { name: 'DATA on stream 0 (PROTOCOL_ERROR)', bytes: h2Frame(H2_FRAME.DATA, 0, 0, Buffer.from('abc')) },
    {
      name: 'a broken header block while a request waits for its body',
      bytes: Buffer.concat([
        h2Frame(H2_FRAME.HEADERS, H2_FLAG.END_HEADERS, 1, Buffer.concat([Buffer.from([0x83, 0x87]), hpackLiteral(0x04, '/upload'), hpackLiteral(0x01, HOST)])),
        h2Frame(H2_FRAME.HEADERS, H2_FLAG.END_STREAM | H2_FLAG.END_HEADERS, 3, Buffer.from([0xff, 0xff, 0xff, 0x0f])),
      ]),
    },
  ];

  it('lets go of each connection within seconds of its client leaving, and of no live one', async () => {
    const fra = await TestOrigin.start('fra');
    const router = await startTestRouter({ fra: fra.url, nyc: fra.url }, ['--admin-token', ADMIN_TOKEN]);
    cleanup.add(() => fra.kill(), () => router.close());
    // A live client, quiet between its requests on one session for longer than a look's quiet spell.
    const live = http2Connect(`https://${HOST}:${router.httpsPort}`, { rejectUnauthorized: false, host: '127.0.0.1', servername: HOST, localAddress: '127.81.0.99' } as never);
    live.on('error', () => undefined);
    cleanup.add(() => live.destroy());
    const liveGet = (path: string) =>
      new Promise<number>((resolve, reject) => {
        const stream = live.request({ ':path': path, ':authority': HOST });
        stream.on('response', (h) => resolve(Number(h[':status'])));
        stream.on('error', reject);
        stream.resume();
      });
    // An upload's request waits for ever: only its connection's end lets it go.
    fra.handler = (req, res) => (req.url === '/live' ? res.end('ok') : undefined);
    expect(await liveGet('/live')).toBe(200);
    let address = 0;
    for (const { name, bytes, quietFirstMs } of errors) {
      const attacker = await openRawH2(router.httpsPort, { reading: true, localAddress: `127.81.0.${++address}` });
      if (quietFirstMs !== undefined) await new Promise((r) => setTimeout(r, quietFirstMs));
      await attacker.send(bytes);
      await until(`${name}: the router's GOAWAY`, () => attacker.resets().some((r) => r.streamId === 0));
      attacker.socket.destroy();
      await until(`${name}: its connection let go`, async () => (await openConnectionsAt(router.adminPort)) === 1, 5_000);
    }
    // The live session was looked at too (quiet for longer than ENDED_SESSION_LOOK_MS) and still serves.
    expect(await liveGet('/live')).toBe(200);
    expect(await openConnectionsAt(router.adminPort)).toBe(1);
  }, 60_000);

  it('never makes a session read while its answer is backed up: its client cannot make it take more', async () => {
    const fra = await TestOrigin.start('fra');
    fra.recordBodies = false;
    fra.handler = (req, res, seen) => (req.url === '/big' ? largeBody(64 * 1024 * 1024)(req, res) : echo(req, res, seen));
    const router = await startTestRouter({ fra: fra.url, nyc: fra.url }, ['--admin-token', ADMIN_TOKEN]);
    cleanup.add(() => fra.kill(), () => router.close());
    // A client that opens every window, asks for a large answer and reads none of it.
    const client = await openRawH2(router.httpsPort, { reading: false, localAddress: '127.81.1.1' });
    cleanup.add(() => client.socket.destroy());
    const widest = Buffer.alloc(4);
    widest.writeUInt32BE(0x7fff0000);
    await client.send(
      Buffer.concat([
        h2Frame(H2_FRAME.SETTINGS, 0, 0, Buffer.from([0x00, 0x04, 0x7f, 0xff, 0xff, 0xff])),
        h2Frame(H2_FRAME.WINDOW_UPDATE, 0, 0, widest),
        h2Frame(H2_FRAME.HEADERS, H2_FLAG.END_STREAM | H2_FLAG.END_HEADERS, 1, hpackGet('/big')),
      ]),
    );
    // Quiet past several looks while the router's writes are backed up; then a second request.
    await new Promise((r) => setTimeout(r, 3_000));
    await client.send(h2Frame(H2_FRAME.HEADERS, H2_FLAG.END_STREAM | H2_FLAG.END_HEADERS, 3, hpackGet('/second')));
    await new Promise((r) => setTimeout(r, 1_500));
    // Node does not read a session whose write is backed up, and the looks did not make it.
    expect(fra.requests.map((r) => r.url)).toEqual(['/big']);
    // Once the client reads, the write ends, Node reads again on its own, and the request arrives.
    client.socket.resume();
    await until('the second request reached the region', () => fra.requests.some((r) => r.url === '/second'), 10_000);
  }, 30_000);
});

/**
 * nghttp2 ended the attacker's session (GOAWAY STREAM_CLOSED, as the client saw it), and the router
 * closed the connection within the send timeout and an idle period or two (8 s: before the fix it
 * stayed open for ever), while still serving others.
 */
async function expectClosedAndStillServing(attacker: Awaited<ReturnType<typeof openRawH2>>, httpsPort: number): Promise<void> {
  const closed = await attacker.closed(8_000);
  expect(attacker.resets()).toContainEqual({ streamId: 0, code: 5 /* STREAM_CLOSED */ });
  expect(closed).toBe(true);
  expect((await getH2(httpsPort, '/after')).headers[':status']).toBe(200);
}
