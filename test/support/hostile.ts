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
import { hpackGet as rawHpackGet, openRawH2 as rawOpenH2, rapidResetFrames } from '../../bench/raw-h2.js';
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

// Raw HTTP/2 frames, shared with bench:hostile's rapid reset (bench/raw-h2.ts); here for this host.
export { h2Frame, H2_FLAG, H2_FRAME, hpackLiteral, hpackNewField } from '../../bench/raw-h2.js';

/** A GET's header block for `path` at the test host (HPACK without tables). */
export const hpackGet = (path: string): Buffer => rawHpackGet(path, HOST);

/** A TLS connection to the test host speaking HTTP/2 by hand (bench/raw-h2.ts). */
export const openRawH2 = (port: number, options: { reading: boolean; localAddress?: string }) => rawOpenH2(port, { ...options, servername: HOST });

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

/** A router's /metrics text, read on its admin port (with ADMIN_TOKEN). */
export async function metricsAt(adminPort: number): Promise<string> {
  return (await request(`http://127.0.0.1:${adminPort}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).body.text();
}

/** The same, read from a router's /metrics on its admin port. */
export async function connectionsRefusedAt(adminPort: number, reason: string): Promise<number> {
  return connectionsRefused(await metricsAt(adminPort), reason);
}

/** `edge_router_open_connections` of a router: client connections open on its public listeners (NaN when absent). */
export async function openConnectionsAt(adminPort: number): Promise<number> {
  return Number(/^edge_router_open_connections (\d+)$/m.exec(await metricsAt(adminPort))?.[1] ?? 'NaN');
}

/**
 * The rapid reset as an attacker writes it by hand: the HTTP/2 preface, then HEADERS and
 * RST_STREAM for `streams` streams, all in one write (so the router reads each stream's reset
 * together with its request), from `localAddress` if given. Waits until the router closes the
 * connection, or `waitMs`.
 */
export async function packedResetBurst(port: number, streams: number, path: string, options: { waitMs?: number; localAddress?: string } = {}): Promise<{ closed: boolean }> {
  const { waitMs = 3_000, localAddress } = options;
  const connection = await openRawH2(port, { reading: true, ...(localAddress === undefined ? {} : { localAddress }) });
  await connection.send(rapidResetFrames(1, streams, path, HOST));
  const closed = await connection.closed(waitMs);
  connection.socket.destroy();
  return { closed };
}
