/**
 * Hostile bytes: seeded mutations of valid HTTP/1.1 requests and HTTP/2 frame sequences, each on a
 * TLS connection of its own to a real router. Whatever arrives, the router answers with a
 * well-formed status line or closes; it never faults (a 500 and a `request_fault` line, the sign
 * of an exception of its own), it keeps serving everyone else, and once the clients are gone it
 * holds nothing for them: no request in flight to a region, no connection open.
 *
 * Seeded: a failure names its case, and the same seed gives the same bytes again (FUZZ_SEED to try
 * others by hand). Bounded: a fixed number of cases, each given at most CASE_WAIT_MS.
 */
import { connect as tlsConnect } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/core/seeded-random.js';
import { agentFor, get, getH2, HOST } from '../support/clients.js';
import { Cleanup, H2_FLAG, H2_FRAME, h2Frame, hpackGet, hpackLiteral, hpackNewField, hostileSetup, metricsAt, openRawH2 } from '../support/hostile.js';
import { until } from '../support/until.js';

const cleanup = new Cleanup();
afterEach(cleanup.run);

const SEED = Number(process.env.FUZZ_SEED ?? 0xf022);
/** How long a case is given to be answered or closed: a head cut short waits for the rest. */
const CASE_WAIT_MS = 800;
/** Cases in flight at once (each from its own address, so no per-address limit decides). */
const PARALLEL = 24;

type Random = () => number;
const pick = <T>(random: Random, list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
const between = (random: Random, min: number, max: number): number => min + Math.floor(random() * (max - min + 1));

/** Bytes that mean something to a parser: line ends, separators, controls, the edges of Latin-1. */
const TELLING_BYTES = [0x00, 0x09, 0x0a, 0x0d, 0x20, 0x22, 0x23, 0x25, 0x2c, 0x2f, 0x3a, 0x3b, 0x3f, 0x40, 0x5c, 0x7f, 0x80, 0xff, 0x30, 0x39, 0x41];
const tellingByte = (random: Random): number => (random() < 0.7 ? pick(random, TELLING_BYTES) : between(random, 0, 255));

/** The case's address: 127.79.x.y, one per case (y from 1 to 250). */
const caseAddress = (index: number): string => `127.79.${Math.floor(index / 250)}.${(index % 250) + 1}`;

// --- HTTP/1.1 ------------------------------------------------------------------------------------

const TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
const HTTP1_REQUESTS: readonly string[] = [
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

/** One to four of: a byte changed, bytes put in, bytes taken out, a line doubled or broken, a telling field added, the end cut. */
function mutateHttp1(random: Random, text: string): Buffer {
  let bytes = Buffer.from(text, 'latin1');
  for (let n = between(random, 1, 4); n > 0; n--) {
    const at = between(random, 0, Math.max(0, bytes.length - 1));
    switch (between(random, 0, 6)) {
      case 0:
        bytes = Buffer.from(bytes);
        bytes[at] = tellingByte(random);
        break;
      case 1:
        bytes = Buffer.concat([bytes.subarray(0, at), Buffer.from(Array.from({ length: between(random, 1, 8) }, () => tellingByte(random))), bytes.subarray(at)]);
        break;
      case 2:
        bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + between(random, 1, 16))]);
        break;
      case 3: {
        const lines = bytes.toString('latin1').split('\r\n');
        const line = between(random, 0, lines.length - 1);
        lines.splice(line, 0, lines[line]!);
        bytes = Buffer.from(lines.join('\r\n'), 'latin1');
        break;
      }
      case 4: {
        const end = bytes.indexOf('\r\n');
        if (end < 0) break;
        bytes = Buffer.concat([bytes.subarray(0, end + 2), Buffer.from(`${pick(random, TELLING_FIELDS)(random)}\r\n`, 'latin1'), bytes.subarray(end + 2)]);
        break;
      }
      case 5: {
        const end = bytes.indexOf('\r\n', at);
        if (end >= 0) bytes = Buffer.concat([bytes.subarray(0, end), Buffer.from(random() < 0.5 ? '\n' : '\r'), bytes.subarray(end + 2)]);
        break;
      }
      default:
        bytes = bytes.subarray(0, at);
    }
  }
  return bytes;
}

/** Sends `bytes` on a TLS connection speaking HTTP/1.1 (half-closed after them when `halfClose`); what came back within CASE_WAIT_MS. */
function exchangeHttp1(port: number, localAddress: string, bytes: Buffer, halfClose: boolean): Promise<Buffer> {
  return new Promise((resolve) => {
    const received: Buffer[] = [];
    const socket = tlsConnect({ port, host: '127.0.0.1', servername: HOST, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'], localAddress } as never);
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(Buffer.concat(received));
    };
    const timer = setTimeout(done, CASE_WAIT_MS);
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    socket.once('close', done);
    socket.once('secureConnect', () => {
      socket.write(bytes);
      if (halfClose) socket.end();
    });
  });
}

// --- HTTP/2 --------------------------------------------------------------------------------------

const { DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION } = H2_FRAME;
const { END_STREAM, END_HEADERS } = H2_FLAG;
const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};

interface Frame {
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

const HTTP2_SEQUENCES: readonly (() => Frame[])[] = [
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
function mutateHttp2(random: Random, frames: Frame[]): Frame[] {
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

function encode(frames: readonly Frame[]): Buffer {
  return Buffer.concat(
    frames.map((f) => {
      const bytes = h2Frame(f.type, f.flags, f.streamId, f.payload);
      if (f.claimedLength !== undefined) bytes.writeUIntBE(f.claimedLength, 0, 3);
      return bytes;
    }),
  );
}

// --- the cases -----------------------------------------------------------------------------------

interface Case {
  readonly index: number;
  readonly kind: 'http1' | 'h2';
  readonly bytes: Buffer;
  readonly halfClose: boolean;
}

function cases(random: Random, count: number): Case[] {
  return Array.from({ length: count }, (_, index) =>
    index % 2 === 0
      ? { index, kind: 'http1', bytes: mutateHttp1(random, pick(random, HTTP1_REQUESTS)), halfClose: random() < 0.5 }
      : { index, kind: 'h2', bytes: encode(mutateHttp2(random, pick(random, HTTP2_SEQUENCES)())), halfClose: false },
  );
}

/** Runs `job` over `items`, `limit` at a time. */
async function inBatches<T>(items: readonly T[], limit: number, job: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += limit) await Promise.all(items.slice(i, i + limit).map(job));
}

/** The status line HTTP/1.1 answers start with: a version, three digits, a reason. */
const STATUS_LINE = /^HTTP\/1\.[01] [1-5]\d\d [^\r\n]*\r\n/;

/** The sum of a metric's series (NaN when it has none). */
function metricSum(metrics: string, name: string): number {
  const values = metrics.split('\n').filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `)).map((l) => Number(l.slice(l.lastIndexOf(' ') + 1)));
  return values.length === 0 ? Number.NaN : values.reduce((a, b) => a + b, 0);
}

describe('hostile clients: fuzzed requests', () => {
  it('answers mutated HTTP/1.1 and HTTP/2 with a status or a close, never a fault, and holds nothing once they are gone', async () => {
    const { fra, nyc, router } = await hostileSetup(cleanup, []);
    const random = seededRandom(SEED);
    const all = cases(random, 480);
    const malformed: string[] = [];
    let answered = 0;
    let h2Connected = 0;
    const connectFailures: string[] = [];
    await inBatches(all, PARALLEL, async (c) => {
      const localAddress = caseAddress(c.index);
      if (c.kind === 'http1') {
        const reply = await exchangeHttp1(router.httpsPort, localAddress, c.bytes, c.halfClose);
        if (reply.length === 0) return;
        answered++;
        const head = reply.subarray(0, 200).toString('latin1');
        if (!STATUS_LINE.test(head)) malformed.push(`case ${c.index} (seed ${SEED}): ${JSON.stringify(head)} for ${JSON.stringify(c.bytes.subarray(0, 200).toString('latin1'))}`);
        return;
      }
      const connection = await openRawH2(router.httpsPort, { reading: true, localAddress }).catch((e: Error) => e);
      if (connection instanceof Error) {
        connectFailures.push(`case ${c.index}: ${connection.message}`);
        return;
      }
      h2Connected++;
      await connection.send(c.bytes);
      await connection.closed(CASE_WAIT_MS);
      connection.socket.destroy();
    });
    expect(malformed).toEqual([]);
    // The cases reached the router: most HTTP/1.1 ones were answered, every HTTP/2 one connected.
    const seed = `seed ${SEED}`;
    expect(answered, seed).toBeGreaterThan(all.filter((c) => c.kind === 'http1').length / 2);
    expect(connectFailures, seed).toEqual([]);
    expect(h2Connected, seed).toBe(all.filter((c) => c.kind === 'h2').length);

    // Never a fault of the router's own: no 500, no request_fault, nothing logged as an error.
    expect(router.logs.filter((l) => l.event === 'request_fault' || Number(l.level) >= 50), seed).toEqual([]);
    expect(router.access.filter((a) => a.status === 500), seed).toEqual([]);
    // Some were forwarded, some refused: the cases were neither all good nor all rejected at once.
    const statuses = new Set(router.access.map((a) => a.status));
    expect(statuses.has(200), seed).toBe(true);
    expect(statuses.has(400), seed).toBe(true);

    // Everyone else is still served, on both protocols.
    const agent = agentFor(router.httpsPort, { localAddress: '127.79.255.1' });
    cleanup.add(() => agent.destroy());
    expect((await get(agent, router.httpsPort, '/after-fuzz')).status).toBe(200);
    expect((await getH2(router.httpsPort, '/after-fuzz-h2')).headers[':status']).toBe(200);
    await agent.close();

    // And nothing is held for the clients that left: no request in flight to a region, every
    // request the regions were sent over, no connection of theirs open.
    await until(`nothing in flight to a region (${seed})`, async () => metricSum(await metricsAt(router.adminPort), 'edge_router_region_in_flight') === 0, 10_000);
    await until(`every forwarded request over at the regions (${seed})`, () => [...fra.requests, ...nyc.requests].every((r) => r.done), 10_000);
    await until(`no client connection open, no tunnel (${seed})`, async () => {
      const metrics = await metricsAt(router.adminPort);
      return metricSum(metrics, 'edge_router_open_connections') === 0 && metricSum(metrics, 'edge_router_websockets_open') === 0;
    }, 10_000);
  }, 120_000);
});
