/**
 * Seeded mutations for the fuzz tests in test/hostile: valid HTTP/1.1 requests, HTTP/2 frame
 * sequences, PROXY protocol headers and WebSocket openings, each changed in the ways that have
 * broken parsers and proxies (line ends, separators, framing fields, lengths, flags, stream ids).
 * The same seed gives the same bytes, so a failure names a case that can be replayed.
 */
import { connect as netConnect, createServer as createNetServer } from 'node:net';
import { once } from 'node:events';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import type { Socket } from 'node:net';
import { expect } from 'vitest';
import { HOST } from './clients.js';
import { H2_FLAG, H2_FRAME, h2Frame, hpackGet, hpackLiteral, hpackNewField, metricsAt } from './hostile.js';
import { metricSum } from './metrics-text.js';
import type { TestOrigin } from './origin.js';
import type { TestRouter } from './router.js';
import { until } from './until.js';

export type Random = () => number;
export const pick = <T>(random: Random, list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
export const between = (random: Random, min: number, max: number): number => min + Math.floor(random() * (max - min + 1));

/** Bytes that mean something to a parser: line ends, separators, controls, the edges of Latin-1. */
const TELLING_BYTES = [0x00, 0x09, 0x0a, 0x0d, 0x20, 0x22, 0x23, 0x25, 0x2c, 0x2f, 0x3a, 0x3b, 0x3f, 0x40, 0x5c, 0x7f, 0x80, 0xff, 0x30, 0x39, 0x41];
export const tellingByte = (random: Random): number => (random() < 0.7 ? pick(random, TELLING_BYTES) : between(random, 0, 255));

// --- HTTP/1.1 ------------------------------------------------------------------------------------

const TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
export const HTTP1_REQUESTS: readonly string[] = [
  `GET /a?x=1&y=%20 HTTP/1.1\r\nHost: ${HOST}\r\nUser-Agent: fuzz\r\nAccept: */*\r\n\r\n`,
  `POST /p HTTP/1.1\r\nHost: ${HOST}\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello`,
  `POST /c HTTP/1.1\r\nHost: ${HOST}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`,
  `GET /ws HTTP/1.1\r\nHost: ${HOST}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  `GET https://${HOST}/absolute HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`,
  `PUT /e HTTP/1.1\r\nHost: ${HOST}\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc`,
  `GET /f HTTP/1.1\r\nHost: ${HOST}\r\nX-Forwarded-For: 1.2.3.4\r\nForwarded: for=1.2.3.4\r\nX-Request-Id: abc-123\r\ntraceparent: ${TRACEPARENT}\r\nCookie: a=b\r\nCookie: c=d\r\nConnection: keep-alive, x-foo\r\nX-Foo: 1\r\n\r\n`,
  `GET /one HTTP/1.1\r\nHost: ${HOST}\r\n\r\nGET /two HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`,
  `OPTIONS * HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`,
  `HEAD /h HTTP/1.0\r\nHost: ${HOST}\r\n\r\n`,
  `DELETE /_edge/prewarm HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 0\r\n\r\n`,
];

/** Header lines that have broken proxies: framing twice, smuggling, the edge's own names, size. */
const TELLING_FIELDS: readonly ((random: Random) => string)[] = [
  () => 'Transfer-Encoding: chunked',
  () => 'Transfer-Encoding: gzip, chunked',
  () => 'Transfer-Encoding : chunked',
  () => 'Transfer-Encoding: chunked, identity',
  () => 'Content-Length: 0',
  () => 'Content-Length: -1',
  () => 'Content-Length: 1, 2',
  () => 'Content-Length: 99999999999999999999',
  () => 'Content-Length: 3\r\nContent-Length: 4',
  () => 'Host: other.example',
  () => 'Host:',
  () => `Host: ${HOST}:99999`,
  () => ' folded continuation',
  () => 'X-Edge-Region: syd',
  () => 'x-edge-fn: someone-else',
  () => 'Upgrade: h2c',
  () => 'Connection: close',
  () => 'Connection: host, x-forwarded-for',
  () => 'Expect: 100-continue',
  () => 'Expect: something-else',
  () => 'Proxy: http://127.0.0.1:1',
  () => 'TE: trailers',
  () => 'X-Request-Id: \u00ff\u00fe',
  () => `traceparent: ${TRACEPARENT.slice(0, 20)}`,
  (random) => `X-Long: ${'a'.repeat(between(random, 0, 40_000))}`,
  (random) => `X-Forwarded-For: ${Array.from({ length: between(random, 1, 300) }, (_, i) => `10.0.${i >> 8}.${i & 0xff}`).join(', ')}`,
];

/** One byte-level change at a random place: a byte changed, bytes put in, bytes taken out, the end cut. */
function changeBytes(random: Random, bytes: Buffer): Buffer {
  const at = between(random, 0, Math.max(0, bytes.length - 1));
  switch (between(random, 0, 3)) {
    case 0: {
      const changed = Buffer.from(bytes);
      if (changed.length > 0) changed[at] = tellingByte(random);
      return changed;
    }
    case 1:
      return Buffer.concat([bytes.subarray(0, at), Buffer.from(Array.from({ length: between(random, 1, 8) }, () => tellingByte(random))), bytes.subarray(at)]);
    case 2:
      return Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + between(random, 1, 16))]);
    default:
      return bytes.subarray(0, at);
  }
}

/** One to four byte-level changes (for binary or line-less input, a PROXY header say). */
export function mutateBytes(random: Random, bytes: Buffer): Buffer {
  for (let n = between(random, 1, 4); n > 0; n--) bytes = changeBytes(random, bytes);
  return bytes;
}

/** One to four of: a byte-level change, a line doubled or broken, a telling field added. */
export function mutateHttp1(random: Random, text: string): Buffer {
  let bytes: Buffer = Buffer.from(text, 'latin1');
  for (let n = between(random, 1, 4); n > 0; n--) {
    switch (between(random, 0, 6)) {
      case 0: {
        const lines = bytes.toString('latin1').split('\r\n');
        const line = between(random, 0, lines.length - 1);
        lines.splice(line, 0, lines[line]!);
        bytes = Buffer.from(lines.join('\r\n'), 'latin1');
        break;
      }
      case 1: {
        const end = bytes.indexOf('\r\n');
        if (end < 0) break;
        bytes = Buffer.concat([bytes.subarray(0, end + 2), Buffer.from(`${pick(random, TELLING_FIELDS)(random)}\r\n`, 'latin1'), bytes.subarray(end + 2)]);
        break;
      }
      case 2: {
        const end = bytes.indexOf('\r\n', between(random, 0, Math.max(0, bytes.length - 1)));
        if (end >= 0) bytes = Buffer.concat([bytes.subarray(0, end), Buffer.from(random() < 0.5 ? '\n' : '\r'), bytes.subarray(end + 2)]);
        break;
      }
      default:
        bytes = changeBytes(random, bytes);
    }
  }
  return bytes;
}

// --- HTTP/2 --------------------------------------------------------------------------------------

const { DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION } = H2_FRAME;
const { END_STREAM, END_HEADERS } = H2_FLAG;
const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};

export interface Frame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
  /** The length the frame header claims, when not the payload's. */
  claimedLength?: number;
}

const postBlock = (path: string) => Buffer.concat([Buffer.from([0x83, 0x87]), hpackLiteral(0x04, path), hpackLiteral(0x01, HOST)]);
/** HEADERS fields that are wrong on HTTP/2 or were once trouble: connection-specific, upper case, CR/LF, pseudo-headers repeated or late. */
const TELLING_H2_FIELDS: readonly Buffer[] = [
  hpackNewField('connection', 'close'),
  hpackNewField('te', 'gzip'),
  hpackNewField('X-Upper', 'case'),
  hpackNewField('x-crlf', 'a\r\nb: c'),
  hpackNewField('x-edge-region', 'syd'),
  hpackNewField('content-length', '3'),
  hpackNewField('content-length', 'x'),
  hpackNewField('transfer-encoding', 'chunked'),
  hpackNewField(':protocol', 'websocket'),
  hpackNewField(':path', '/again'),
  hpackNewField('cookie', 'a=b'),
  hpackNewField('host', 'other.example'),
  hpackLiteral(0x01, 'other.example'),
  hpackLiteral(0x04, ''),
  hpackLiteral(0x02, 'CONNECT'),
  Buffer.from([0x3f, 0xe1, 0x1f]), // a dynamic table size update past the limit
  Buffer.from([0xff, 0xff, 0xff, 0x0f]), // an index far past both tables
  Buffer.from([0x00, 0x85, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x61]), // Huffman that does not decode
];

export const HTTP2_SEQUENCES: readonly (() => Frame[])[] = [
  () => [{ type: HEADERS, flags: END_STREAM | END_HEADERS, streamId: 1, payload: hpackGet('/h2') }],
  () => [
    { type: HEADERS, flags: END_HEADERS, streamId: 1, payload: postBlock('/upload') },
    { type: DATA, flags: 0, streamId: 1, payload: Buffer.from('hello ') },
    { type: DATA, flags: END_STREAM, streamId: 1, payload: Buffer.from('world') },
  ],
  () => [
    { type: HEADERS, flags: END_STREAM, streamId: 1, payload: hpackGet('/continued').subarray(0, 3) },
    { type: CONTINUATION, flags: END_HEADERS, streamId: 1, payload: hpackGet('/continued').subarray(3) },
  ],
  () => [
    { type: WINDOW_UPDATE, flags: 0, streamId: 0, payload: u32(1_000_000) },
    { type: PING, flags: 0, streamId: 0, payload: Buffer.alloc(8, 1) },
    { type: PRIORITY, flags: 0, streamId: 3, payload: Buffer.concat([u32(1), Buffer.from([16])]) },
    { type: HEADERS, flags: END_STREAM | END_HEADERS, streamId: 3, payload: hpackGet('/after-control') },
    { type: SETTINGS, flags: 0, streamId: 0, payload: Buffer.concat([Buffer.from([0x00, 0x04]), u32(1 << 20)]) },
  ],
  () => [
    { type: HEADERS, flags: END_HEADERS, streamId: 1, payload: hpackGet('/cancelled') },
    { type: RST_STREAM, flags: 0, streamId: 1, payload: u32(8) },
    { type: HEADERS, flags: END_STREAM | END_HEADERS, streamId: 3, payload: hpackGet('/next') },
  ],
  () => [
    { type: HEADERS, flags: END_STREAM | END_HEADERS, streamId: 1, payload: hpackGet('/before-goaway') },
    { type: GOAWAY, flags: 0, streamId: 0, payload: Buffer.concat([u32(1), u32(0)]) },
  ],
];

/** One to four of: a field swapped, type, flags, stream or claimed length changed, payload bytes changed, a frame doubled, dropped or cut. */
export function mutateHttp2(random: Random, frames: Frame[]): Frame[] {
  for (let n = between(random, 1, 4); n > 0 && frames.length > 0; n--) {
    const i = between(random, 0, frames.length - 1);
    const frame = frames[i]!;
    switch (between(random, 0, 8)) {
      case 0:
        if (frame.type === HEADERS || frame.type === CONTINUATION) frame.payload = Buffer.concat([frame.payload, pick(random, TELLING_H2_FIELDS)]);
        else frame.payload = Buffer.concat([frame.payload, Buffer.from([tellingByte(random)])]);
        break;
      case 1:
        frame.type = random() < 0.8 ? between(random, 0, 9) : between(random, 10, 255);
        break;
      case 2:
        frame.flags = between(random, 0, 255);
        break;
      case 3:
        frame.streamId = pick(random, [0, 1, 2, 3, 5, 0x7fffffff, between(random, 0, 100)]);
        break;
      case 4:
        frame.claimedLength = pick(random, [0, frame.payload.length + 1, Math.max(0, frame.payload.length - 1), 16_385, 0xffffff]);
        break;
      case 5:
        if (frame.payload.length > 0) {
          frame.payload = Buffer.from(frame.payload);
          frame.payload[between(random, 0, frame.payload.length - 1)] = tellingByte(random);
        }
        break;
      case 6:
        frames.splice(i, 0, { ...frame });
        break;
      case 7:
        frames.splice(i, 1);
        break;
      default:
        frame.payload = frame.payload.subarray(0, between(random, 0, frame.payload.length));
    }
  }
  return frames;
}

export function encodeFrames(frames: readonly Frame[]): Buffer {
  return Buffer.concat(
    frames.map((f) => {
      const bytes = h2Frame(f.type, f.flags, f.streamId, f.payload);
      if (f.claimedLength !== undefined) bytes.writeUIntBE(f.claimedLength, 0, 3);
      return bytes;
    }),
  );
}


// --- PROXY protocol (haproxy doc/proxy-protocol.txt) ---------------------------------------------

const PROXY_V2_SIGNATURE = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');

/** A v2 header: signature, version and command, family and transport, the address block's length, the block. */
function proxyV2(versionCommand: number, familyTransport: number, block: Buffer): Buffer {
  const fixed = Buffer.from([versionCommand, familyTransport, 0, 0]);
  fixed.writeUInt16BE(block.length, 2);
  return Buffer.concat([PROXY_V2_SIGNATURE, fixed, block]);
}

const portPair = (source: number, dest: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt16BE(source, 0);
  b.writeUInt16BE(dest, 2);
  return b;
};

/**
 * A valid PROXY header announcing `source` (an IPv4 address) in one of the shapes load balancers
 * send: v1 TCP4, TCP6 (the address mapped) or UNKNOWN; v2 PROXY over TCP4 or TCP6, with a TLV;
 * v2 LOCAL (a health check: the socket's own peer counts).
 */
export function proxyHeader(random: Random, source: string): Buffer {
  const octets = source.split('.').map(Number);
  const port = between(random, 1024, 65535);
  switch (between(random, 0, 5)) {
    case 0:
      return Buffer.from(`PROXY TCP4 ${source} 192.0.2.10 ${port} 443\r\n`);
    case 1:
      return Buffer.from(`PROXY TCP6 ::ffff:${source} 2001:db8::10 ${port} 443\r\n`);
    case 2:
      return Buffer.from('PROXY UNKNOWN\r\n');
    case 3:
      return proxyV2(0x21, 0x11, Buffer.concat([Buffer.from([...octets, 192, 0, 2, 10]), portPair(port, 443)]));
    case 4: {
      const mapped = Buffer.concat([Buffer.alloc(10), Buffer.from([0xff, 0xff, ...octets])]);
      const authority = Buffer.concat([Buffer.from([0x02, 0x00, HOST.length]), Buffer.from(HOST)]);
      return proxyV2(0x21, 0x21, Buffer.concat([mapped, Buffer.from('20010db8000000000000000000000010', 'hex'), portPair(port, 443), authority]));
    }
    default:
      return proxyV2(0x20, 0x00, Buffer.alloc(0));
  }
}

// --- TLS ----------------------------------------------------------------------------------------

/**
 * The first TLS record Node's client sends (its ClientHello) for `servername` (none when undefined)
 * and `alpn`, caught by a listener of our own that answers nothing.
 */
export async function clientHelloFor(servername: string | undefined, alpn: readonly string[]): Promise<Buffer> {
  const catcher = createNetServer();
  catcher.listen(0, '127.0.0.1');
  await once(catcher, 'listening');
  const port = (catcher.address() as { port: number }).port;
  try {
    const caught = new Promise<Buffer>((resolve) => {
      catcher.once('connection', (socket: Socket) => {
        let got = Buffer.alloc(0);
        socket.on('data', (chunk: Buffer) => {
          got = Buffer.concat([got, chunk]);
          // A record: type, version, 16-bit length, then that many bytes.
          if (got.length >= 5 && got.length >= 5 + got.readUInt16BE(3)) {
            socket.destroy();
            resolve(got.subarray(0, 5 + got.readUInt16BE(3)));
          }
        });
      });
    });
    const client = tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false, ALPNProtocols: [...alpn], ...(servername === undefined ? {} : { servername }) });
    client.on('error', () => undefined);
    const hello = await caught;
    client.destroy();
    return hello;
  } finally {
    catcher.close();
  }
}

// --- WebSockets ----------------------------------------------------------------------------------

/** A masked client frame (RFC 6455 §5.2) of `payload` under 126 bytes, `opcode` text by default. */
export function webSocketFrame(payload: string, opcode = 0x1): Buffer {
  const mask = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);
  const data = Buffer.from(payload);
  return Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | data.length]), mask, Buffer.from(data.map((b, i) => b ^ mask[i % 4]!))]);
}

/** An HTTP/1.1 WebSocket upgrade's head. */
export const webSocketUpgrade = (path: string): string =>
  `GET ${path} HTTP/1.1\r\nHost: ${HOST}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`;

/** An extended CONNECT's header block (RFC 8441): :method CONNECT, :protocol websocket, :scheme, :path, :authority. */
const extendedConnectBlock = (path: string): Buffer =>
  Buffer.concat([hpackLiteral(0x02, 'CONNECT'), hpackNewField(':protocol', 'websocket'), Buffer.from([0x87]), hpackLiteral(0x04, path), hpackLiteral(0x01, HOST), hpackNewField('sec-websocket-version', '13')]);

/** WebSockets over HTTP/2: an extended CONNECT, then frames on its stream, ended, reset, or beside a request. */
export const WEBSOCKET_H2_SEQUENCES: readonly (() => Frame[])[] = [
  () => [
    { type: HEADERS, flags: END_HEADERS, streamId: 1, payload: extendedConnectBlock('/ws') },
    { type: DATA, flags: 0, streamId: 1, payload: webSocketFrame('hello') },
  ],
  () => [
    { type: HEADERS, flags: END_HEADERS, streamId: 1, payload: extendedConnectBlock('/ws-ended') },
    { type: DATA, flags: 0, streamId: 1, payload: webSocketFrame('one') },
    { type: DATA, flags: END_STREAM, streamId: 1, payload: webSocketFrame('', 0x8) },
  ],
  () => [
    { type: HEADERS, flags: END_HEADERS, streamId: 1, payload: extendedConnectBlock('/ws-reset') },
    { type: DATA, flags: 0, streamId: 1, payload: webSocketFrame('bye') },
    { type: RST_STREAM, flags: 0, streamId: 1, payload: u32(8) },
  ],
  () => [
    { type: HEADERS, flags: END_HEADERS, streamId: 1, payload: extendedConnectBlock('/ws-beside') },
    { type: HEADERS, flags: END_STREAM | END_HEADERS, streamId: 3, payload: hpackGet('/beside-ws') },
    { type: DATA, flags: 0, streamId: 1, payload: webSocketFrame('after') },
  ],
];

// --- talking to the router -----------------------------------------------------------------------

export interface ExchangeOptions {
  readonly port: number;
  readonly localAddress: string;
  /** Bytes written on the TCP connection first, before TLS if any: a PROXY header. */
  readonly before?: Buffer;
  /** Speak TLS (ALPN http/1.1) over the connection, after `before`. */
  readonly tls: boolean;
  readonly bytes: Buffer;
  /** Half-close after `bytes`. */
  readonly halfClose: boolean;
  /** How long to wait for the router to answer or close. */
  readonly waitMs: number;
}

/** Sends `bytes` (after `before`, over TLS if asked); what came back before the router closed or `waitMs` passed. The connection is destroyed after. */
export function exchange(options: ExchangeOptions): Promise<Buffer> {
  const { port, localAddress, before, tls, bytes, halfClose, waitMs } = options;
  return new Promise((resolve) => {
    const received: Buffer[] = [];
    const tcp = netConnect({ port, host: '127.0.0.1', localAddress });
    let socket: Socket | TLSSocket = tcp;
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      tcp.destroy();
      resolve(Buffer.concat(received));
    };
    const timer = setTimeout(done, waitMs);
    const send = () => {
      socket.write(bytes);
      if (halfClose) socket.end();
    };
    const listen = (s: Socket | TLSSocket) => {
      s.on('error', () => undefined);
      s.on('data', (chunk: Buffer) => received.push(chunk));
      s.once('close', done);
    };
    tcp.on('error', () => undefined);
    tcp.once('connect', () => {
      if (before) tcp.write(before);
      if (!tls) {
        listen(tcp);
        send();
        return;
      }
      socket = tlsConnect({ socket: tcp, servername: HOST, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] });
      listen(socket);
      socket.once('secureConnect', send);
    });
  });
}

/** A case's own client address, 127.79.x.y (y from 1 to 250), so that no per-address limit decides a case. */
export const caseAddress = (index: number): string => `127.79.${Math.floor(index / 250)}.${(index % 250) + 1}`;

/** Runs `job` over `items`, `limit` at a time. */
export async function inBatches<T>(items: readonly T[], limit: number, job: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += limit) await Promise.all(items.slice(i, i + limit).map(job));
}

/** The status line HTTP/1.1 answers start with: a version, three digits, a reason. */
const STATUS_LINE = /^HTTP\/1\.[01] [1-5]\d\d [^\r\n]*\r\n/;

/**
 * Checks an HTTP/1.1 reply: nothing (closed), or a well-formed status line. The status, or
 * undefined when there was none; a reply without a well-formed one is added to `malformed`, named by `label`.
 */
export function statusOf(reply: Buffer, label: string, malformed: string[]): number | undefined {
  if (reply.length === 0) return undefined;
  const head = reply.subarray(0, 200).toString('latin1');
  if (!STATUS_LINE.test(head)) {
    malformed.push(`${label}: ${JSON.stringify(head)}`);
    return undefined;
  }
  return Number(head.slice(9, 12));
}

// --- what every fuzz test checks -----------------------------------------------------------------

/** Never a fault of the router's own: no 500, no `request_fault`, nothing logged as an error. */
export function expectNoFault(router: TestRouter, label: string): void {
  expect(router.logs.filter((l) => l.event === 'request_fault' || Number(l.level) >= 50), label).toEqual([]);
  expect(router.access.filter((a) => a.status === 500), label).toEqual([]);
}

/**
 * Waits until nothing is held for clients that have left: no request in flight to a region, every
 * request the regions were sent over, no client connection or tunnel open.
 */
export async function untilNothingHeld(router: TestRouter, origins: readonly TestOrigin[], label: string): Promise<void> {
  await until(`nothing in flight to a region (${label})`, async () => metricSum(await metricsAt(router.adminPort), 'edge_router_region_in_flight') === 0, 10_000);
  await until(`every forwarded request over at the regions (${label})`, () => origins.every((o) => o.requests.every((r) => r.done)), 10_000);
  await until(`no client connection open, no tunnel (${label})`, async () => {
    const metrics = await metricsAt(router.adminPort);
    return metricSum(metrics, 'edge_router_open_connections') === 0 && metricSum(metrics, 'edge_router_websockets_open') === 0;
  }, 10_000);
}
