/**
 * Misbehaving clients and origins for the hostile-client tests: each is bounded in count and
 * time, talks only to loopback, and cleans up after itself.
 */
import { connect as http2Connect, constants as h2 } from 'node:http2';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { request } from 'undici';
import { agentFor, HOST } from './clients.js';
import { TestOrigin } from './origin.js';
import { startTestRouter } from './router.js';

/** An origin answer of `totalBytes` that honours backpressure: it stalls when the router stops reading. */
export function largeBody(totalBytes = 16 * 1024 * 1024) {
  return (_req: IncomingMessage, res: ServerResponse): void => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': totalBytes });
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    let sent = 0;
    const pump = () => {
      while (sent < totalBytes && !res.destroyed) {
        sent += chunk.length;
        if (!res.write(chunk)) {
          res.once('drain', pump);
          return;
        }
      }
      res.end();
    };
    pump();
  };
}

/** An origin that reads a request body to its end before answering (bodies not recorded: set recordBodies false). */
export function okAfterBody(req: IncomingMessage, res: ServerResponse): void {
  req.resume();
  req.on('end', () => res.end('ok'));
}

/** A TLS HTTP/1.1 connection to the router that reads nothing. */
export function openSilentTls(port: number, localAddress?: string): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ port, host: '127.0.0.1', servername: HOST, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'], ...(localAddress ? { localAddress } : {}) });
    socket.once('secureConnect', () => {
      socket.pause(); // read nothing: the kernel buffers fill and the router sees backpressure
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

export const getLine = (path: string, extra = '') => `GET ${path} HTTP/1.1\r\nHost: ${HOST}\r\n${extra}\r\n`;

/** Writes `paths` as pipelined GETs in one go, reads nothing, and destroys the connection after `leaveAfterMs`. */
export async function pipelineAndLeave(port: number, paths: string[], leaveAfterMs: number, localAddress?: string): Promise<void> {
  const socket = await openSilentTls(port, localAddress);
  socket.on('error', () => undefined);
  socket.write(paths.map((p) => getLine(p)).join(''));
  await new Promise((r) => setTimeout(r, leaveAfterMs));
  socket.destroy();
}

/**
 * HTTP/2 rapid reset (CVE-2023-44487): on each of `connections` sessions, open `streamsEach`
 * requests and cancel each at once (HEADERS then RST_STREAM). Resolves when every session ended,
 * whether the client finished or the server sent GOAWAY.
 */
export async function rapidReset(
  port: number,
  connections: number,
  streamsEach: number,
  options: { path?: string; code?: number; localAddress?: string } = {},
): Promise<{ opened: number; goaways: number }> {
  const { path = '/reset', code = h2.NGHTTP2_CANCEL, localAddress } = options;
  let opened = 0;
  let goaways = 0;
  await Promise.all(
    Array.from({ length: connections }, async () => {
      const session = http2Connect(`https://${HOST}:${port}`, { rejectUnauthorized: false, host: '127.0.0.1', servername: HOST, ...(localAddress ? { localAddress } : {}) } as never);
      session.on('error', () => undefined);
      session.on('goaway', () => goaways++);
      // Destroyed at the end: a session ended this way left its TLS socket open (a handle per
      // connection, kept for as long as the worker lives when test files share one).
      let socket: Duplex | undefined;
      await new Promise<void>((resolve) => {
        session.once('connect', (_session, connected) => {
          socket = connected;
          resolve();
        });
        session.once('close', () => resolve());
      });
      for (let i = 0; i < streamsEach && !session.closed && !session.destroyed; i++) {
        try {
          const stream = session.request({ ':path': `${path}/${i}`, ':method': 'GET', ':authority': HOST });
          stream.on('error', () => undefined);
          stream.close(code);
          opened++;
        } catch {
          break; // the server ended the session
        }
        // Let the frames go out in bursts without starving the event loop.
        if (i % 200 === 199) await new Promise((r) => setImmediate(r));
      }
      session.close();
      await new Promise<void>((resolve) => {
        if (session.destroyed) resolve();
        else session.once('close', () => resolve());
        setTimeout(() => {
          session.destroy();
          resolve();
        }, 3_000).unref();
      });
      socket?.destroy();
    }),
  );
  return { opened, goaways };
}

// --- the setup every hostile test shares -------------------------------------------------------

/** A London client (127.8.0.1 in geo/sim.mmdb): fra is its nearest region, then nyc. */
export const LONDON = '127.8.0.1';
export const ADMIN_TOKEN = 'hostile-test-token-0123456789';

/** Things to undo after each test, last first; register with `afterEach(cleanup.run)`. */
export class Cleanup {
  private readonly steps: Array<() => unknown> = [];
  add(...steps: Array<() => unknown>): void {
    this.steps.push(...steps);
  }
  readonly run = async (): Promise<void> => {
    for (const step of this.steps.splice(0).reverse()) await Promise.resolve().then(step).catch(() => undefined);
  };
}

/**
 * A router (admin token set) in front of fra and nyc stand-ins, and an HTTPS agent for a London
 * client. `idleAt(region)`: the router holds nothing there (no request dispatched or waiting).
 */
export async function hostileSetup(cleanup: Cleanup, flags: string[]) {
  const fra = await TestOrigin.start('fra');
  const nyc = await TestOrigin.start('nyc');
  const router = await startTestRouter({ fra: fra.url, nyc: nyc.url }, ['--admin-token', ADMIN_TOKEN, ...flags]);
  const agent = agentFor(router.httpsPort, { localAddress: LONDON });
  cleanup.add(() => fra.kill(), () => nyc.kill(), () => router.close(), () => agent.destroy());
  const idleAt = (region: string) => {
    const o = router.router.outstanding(region);
    return o.active === 0 && o.queued === 0;
  };
  return { fra, nyc, router, agent, idleAt };
}

/** One HTTP/2 frame (RFC 9113 §4.1): 24-bit length, type, flags, stream id, payload. */
export function h2Frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(streamId, 5);
  return Buffer.concat([head, payload]);
}

export const H2_FRAME = { DATA: 0x0, HEADERS: 0x1, PRIORITY: 0x2, RST_STREAM: 0x3, SETTINGS: 0x4, PING: 0x6, GOAWAY: 0x7, WINDOW_UPDATE: 0x8, CONTINUATION: 0x9 } as const;
export const H2_FLAG = { END_STREAM: 0x1, END_HEADERS: 0x4 } as const;

/** An HPACK literal without indexing, its name from the static table (index < 15), no Huffman (RFC 7541 §6.2.2); values under 127 bytes. */
export const hpackLiteral = (nameIndex: number, value: string): Buffer => Buffer.concat([Buffer.from([nameIndex, value.length]), Buffer.from(value, 'latin1')]);

/** An HPACK literal without indexing and with a new name; name and value under 127 bytes. */
export const hpackNewField = (name: string, value: string): Buffer =>
  Buffer.concat([Buffer.from([0x00, name.length]), Buffer.from(name, 'latin1'), Buffer.from([value.length]), Buffer.from(value, 'latin1')]);

/** A GET's header block without tables: :method GET (static 2), :scheme https (7), :path (4), :authority (1). */
export const hpackGet = (path: string): Buffer => Buffer.concat([Buffer.from([0x82, 0x87]), hpackLiteral(0x04, path), hpackLiteral(0x01, HOST)]);

/**
 * A TLS connection speaking HTTP/2 by hand: the preface and an empty SETTINGS are sent, then the
 * caller writes raw frames. `closed` resolves true when the router closes it, false after `waitMs`.
 * It reads only when `reading` (an attacker that never reads lets the router's replies pile up).
 */
export async function openRawH2(port: number, options: { reading: boolean; localAddress?: string }) {
  const socket = tlsConnect({ port, host: '127.0.0.1', servername: HOST, rejectUnauthorized: false, ALPNProtocols: ['h2'], ...(options.localAddress ? { localAddress: options.localAddress } : {}) });
  socket.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', () => resolve());
    socket.once('error', reject);
  });
  // The frames the router sent, parsed as they arrive (HEADERS blocks are not decoded).
  const frames: Array<{ type: number; flags: number; streamId: number; payload: Buffer }> = [];
  let pending = Buffer.alloc(0);
  if (options.reading) {
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 9) {
        const length = pending.readUIntBE(0, 3);
        if (pending.length < 9 + length) break;
        frames.push({ type: pending[3]!, flags: pending[4]!, streamId: pending.readUInt32BE(5) & 0x7fffffff, payload: pending.subarray(9, 9 + length) });
        pending = pending.subarray(9 + length);
      }
    });
  } else socket.pause();
  const closedAt = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1'), h2Frame(H2_FRAME.SETTINGS, 0, 0)]));
  return {
    socket,
    frames,
    /** RST_STREAM and GOAWAY error codes received, by stream (0 for GOAWAY). */
    resets: () => frames.filter((f) => f.type === H2_FRAME.RST_STREAM || f.type === H2_FRAME.GOAWAY).map((f) => ({ streamId: f.type === H2_FRAME.GOAWAY ? 0 : f.streamId, code: f.type === H2_FRAME.GOAWAY ? f.payload.readUInt32BE(4) : f.payload.readUInt32BE(0) })),
    /** Writes `frames`, waiting for the socket to drain; stops (false) once the router closed it. */
    async send(frames: Buffer): Promise<boolean> {
      if (socket.destroyed) return false;
      if (socket.write(frames)) return true;
      await Promise.race([new Promise((r) => socket.once('drain', r)), closedAt]);
      return !socket.destroyed;
    },
    closed(waitMs: number): Promise<boolean> {
      return Promise.race([closedAt.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), waitMs).unref())]);
    },
  };
}

/** A raw HTTP/2 connection from `localAddress` is closed at once, before TLS completes (a refusal at connect). */
export async function refusedAtConnect(port: number, localAddress: string): Promise<boolean> {
  try {
    (await openRawH2(port, { reading: true, localAddress })).socket.destroy();
    return false;
  } catch {
    return true;
  }
}

/** `edge_router_connections_refused_total{reason}` in a /metrics text (NaN when absent). */
export function connectionsRefused(metrics: string, reason: string): number {
  return Number(new RegExp(`^edge_router_connections_refused_total\\{reason="${reason}"\\} (\\d+)$`, 'm').exec(metrics)?.[1] ?? 'NaN');
}

/** The same, read from a router's /metrics on its admin port. */
export async function connectionsRefusedAt(adminPort: number, reason: string): Promise<number> {
  const metrics = await (await request(`http://127.0.0.1:${adminPort}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).body.text();
  return connectionsRefused(metrics, reason);
}

/**
 * The rapid reset as an attacker writes it by hand: the HTTP/2 preface, then HEADERS and
 * RST_STREAM for `streams` streams, all in one write (so the router reads each stream's reset
 * together with its request). Waits until the router closes the connection, or `waitMs`.
 */
export async function packedResetBurst(port: number, streams: number, path: string, waitMs = 3_000): Promise<{ closed: boolean }> {
  const connection = await openRawH2(port, { reading: true });
  const cancel = Buffer.from([0, 0, 0, 0x8]);
  const frames: Buffer[] = [];
  for (let i = 0; i < streams; i++) {
    const id = 2 * i + 1;
    frames.push(h2Frame(H2_FRAME.HEADERS, H2_FLAG.END_STREAM | H2_FLAG.END_HEADERS, id, hpackGet(`${path}/${i}`)), h2Frame(H2_FRAME.RST_STREAM, 0, id, cancel));
  }
  await connection.send(Buffer.concat(frames));
  const closed = await connection.closed(waitMs);
  connection.socket.destroy();
  return { closed };
}
