import { generateSelfSignedCertificate } from '../../../src/ingress/certificates/dev-certificate.js';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../../../src/core/seeded-random.js';
import { parseProxyHeader, PROXY_HEADER_MAX_BYTES, type ProxyInfo } from '../../../src/ingress/proxy-protocol/header.js';
import {
  peerAddressOf,
  proxyInfoOf,
  proxyProtocolServer,
  type ProxyProtocolServer,
  type ProxyProtocolServerOptions,
} from '../../../src/ingress/proxy-protocol/listener.js';

const V2_SIGNATURE = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');

/** A v2 header: signature, version/command byte, family/transport byte, then `body` with its length. */
function v2(versionCommand: number, familyTransport: number, body: Buffer | readonly number[] = []): Buffer {
  const block = Buffer.from(body);
  const fixed = Buffer.alloc(4);
  fixed[0] = versionCommand;
  fixed[1] = familyTransport;
  fixed.writeUInt16BE(block.length, 2);
  return Buffer.concat([V2_SIGNATURE, fixed, block]);
}

function ports(source: number, dest: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt16BE(source, 0);
  b.writeUInt16BE(dest, 2);
  return b;
}

const TCP4_BLOCK = Buffer.concat([Buffer.from([203, 0, 113, 7, 192, 0, 2, 10]), ports(51234, 443)]);
const TCP6_BLOCK = Buffer.concat([
  Buffer.from('20010db8000000000000000000000007', 'hex'),
  Buffer.from('20010db8000000000000000000000010', 'hex'),
  ports(40000, 8443),
]);
/** PP2_TYPE_AUTHORITY (0x02) "example.com": a TLV the parser must skip by length. */
const AUTHORITY_TLV = Buffer.concat([Buffer.from([0x02, 0x00, 11]), Buffer.from('example.com')]);

const TCP4_INFO: ProxyInfo = {
  command: 'proxy',
  family: 'tcp4',
  sourceAddress: '203.0.113.7',
  sourcePort: 51234,
  destAddress: '192.0.2.10',
  destPort: 443,
};
const TCP6_INFO: ProxyInfo = {
  command: 'proxy',
  family: 'tcp6',
  sourceAddress: '2001:db8::7',
  sourcePort: 40000,
  destAddress: '2001:db8::10',
  destPort: 8443,
};
const UNKNOWN_INFO: ProxyInfo = { command: 'proxy', family: 'unknown' };
const LOCAL_INFO: ProxyInfo = { command: 'local', family: 'unknown' };

const V1_MAX_UNKNOWN = `PROXY UNKNOWN ${'ffff:'.repeat(7)}ffff ${'ffff:'.repeat(7)}ffff 65535 65535\r\n`;

const V1_VALID: [string, string, ProxyInfo][] = [
  ['TCP4', 'PROXY TCP4 203.0.113.7 192.0.2.10 51234 443\r\n', TCP4_INFO],
  ['TCP6, rendered the way Node renders remoteAddress', 'PROXY TCP6 2001:DB8:0:0::7 2001:db8::10 40000 8443\r\n', TCP6_INFO],
  ['TCP6 with an IPv4-mapped source', 'PROXY TCP6 ::ffff:203.0.113.7 ::1 0 65535\r\n', {
    command: 'proxy', family: 'tcp6', sourceAddress: '::ffff:203.0.113.7', sourcePort: 0, destAddress: '::1', destPort: 65535,
  }],
  ['the longest TCP6 line (104 bytes)', `PROXY TCP6 ${'ffff:'.repeat(7)}ffff ${'ffff:'.repeat(7)}ffff 65535 65535\r\n`, {
    command: 'proxy', family: 'tcp6', sourceAddress: `${'ffff:'.repeat(7)}ffff`, sourcePort: 65535, destAddress: `${'ffff:'.repeat(7)}ffff`, destPort: 65535,
  }],
  ['UNKNOWN, short form', 'PROXY UNKNOWN\r\n', UNKNOWN_INFO],
  ['UNKNOWN with addresses, which are ignored (the 107-byte worst case)', V1_MAX_UNKNOWN, UNKNOWN_INFO],
];

const V2_VALID: [string, Buffer, ProxyInfo][] = [
  ['PROXY TCP over IPv4', v2(0x21, 0x11, TCP4_BLOCK), TCP4_INFO],
  ['PROXY TCP over IPv6', v2(0x21, 0x21, TCP6_BLOCK), TCP6_INFO],
  ['PROXY TCP over IPv4 with a TLV after the addresses', v2(0x21, 0x11, Buffer.concat([TCP4_BLOCK, AUTHORITY_TLV])), TCP4_INFO],
  ['PROXY TCP over IPv6, IPv4-mapped', v2(0x21, 0x21, Buffer.concat([
    Buffer.from('00000000000000000000ffffcb007107', 'hex'), Buffer.from('00000000000000000000000000000001', 'hex'), ports(1, 2),
  ])), { command: 'proxy', family: 'tcp6', sourceAddress: '::ffff:203.0.113.7', sourcePort: 1, destAddress: '::1', destPort: 2 }],
  ['LOCAL with no address block', v2(0x20, 0x00), LOCAL_INFO],
  ['LOCAL ignores the family byte but skips the block', v2(0x20, 0xff, TCP4_BLOCK), LOCAL_INFO],
  ['PROXY AF_UNSPEC', v2(0x21, 0x00), UNKNOWN_INFO],
  ['PROXY UDP over IPv4 is consumed as unknown', v2(0x21, 0x12, TCP4_BLOCK), UNKNOWN_INFO],
  ['PROXY UDP over IPv6 is consumed as unknown', v2(0x21, 0x22, TCP6_BLOCK), UNKNOWN_INFO],
  ['PROXY UNIX stream is consumed as unknown', v2(0x21, 0x31, Buffer.alloc(216, 0x61)), UNKNOWN_INFO],
  ['PROXY UNIX datagram is consumed as unknown', v2(0x21, 0x32, Buffer.alloc(216, 0x61)), UNKNOWN_INFO],
  ['a header of exactly the size cap', v2(0x21, 0x11, Buffer.concat([TCP4_BLOCK, Buffer.alloc(PROXY_HEADER_MAX_BYTES - 16 - 12)])), TCP4_INFO],
];

const INVALID: [string, Buffer, string | RegExp][] = [
  ['plain HTTP', Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n\r\n'), 'missing PROXY protocol header'],
  ['a TLS ClientHello', Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00]), 'missing PROXY protocol header'],
  ['lower-case proxy', Buffer.from('proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n'), 'missing PROXY protocol header'],
  ['"PROXY" without its space', Buffer.from('PROXY\r\n'), 'missing PROXY protocol header'],
  ['a v2 signature with a wrong last byte', Buffer.concat([V2_SIGNATURE.subarray(0, 11), Buffer.from([0x0b])]), 'missing PROXY protocol header'],
  ['v1: bare LF', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n'), 'v1: line ends with a bare LF; CRLF is required'],
  ['v1: CR then something else', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX'), 'v1: CR not followed by LF'],
  ['v1: a NUL byte', Buffer.from('PROXY TCP4 1.2.3.4\x00'), 'v1: header contains a byte that is not printable US-ASCII'],
  ['v1: a non-ASCII byte', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2 é\r\n'), 'v1: header contains a byte that is not printable US-ASCII'],
  ['v1: no CRLF within 107 bytes', Buffer.from(`PROXY UNKNOWN ${'a'.repeat(200)}`), 'v1: no CRLF within the first 107 bytes'],
  ['v1: CRLF one byte past the limit', Buffer.from(V1_MAX_UNKNOWN.replace(' 65535\r\n', ' 655350\r\n')), 'v1: no CRLF within the first 107 bytes'],
  ['v1: unknown protocol', Buffer.from('PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n'), 'v1: unknown protocol "TCP5" (expected TCP4, TCP6 or UNKNOWN)'],
  ['v1: lower-case protocol', Buffer.from('PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n'), /^v1: unknown protocol "tcp4"/],
  ['v1: double space', Buffer.from('PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n'), 'v1: fields must be separated by exactly one space'],
  ['v1: trailing space', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n'), 'v1: fields must be separated by exactly one space'],
  ['v1: a tab for a space', Buffer.from('PROXY TCP4 1.2.3.4\t5.6.7.8 1 2\r\n'), 'v1: header contains a byte that is not printable US-ASCII'],
  ['v1: missing the destination port', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n'), 'v1: expected "PROXY TCP4 <src> <dst> <sport> <dport>"'],
  ['v1: an extra field', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n'), 'v1: expected "PROXY TCP4 <src> <dst> <sport> <dport>"'],
  ['v1: empty after the protocol', Buffer.from('PROXY TCP4\r\n'), 'v1: expected "PROXY TCP4 <src> <dst> <sport> <dport>"'],
  ['v1: IPv6 under TCP4', Buffer.from('PROXY TCP4 ::1 5.6.7.8 1 2\r\n'), 'v1: source address is not a valid IPv4 address'],
  ['v1: IPv4 under TCP6', Buffer.from('PROXY TCP6 ::1 5.6.7.8 1 2\r\n'), 'v1: destination address is not a valid IPv6 address'],
  ['v1: an octet with a leading zero', Buffer.from('PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n'), 'v1: source address is not a valid IPv4 address'],
  ['v1: an octet above 255', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.256 1 2\r\n'), 'v1: destination address is not a valid IPv4 address'],
  ['v1: a hostname', Buffer.from('PROXY TCP4 localhost 5.6.7.8 1 2\r\n'), 'v1: source address is not a valid IPv4 address'],
  ['v1: an IPv6 zone index', Buffer.from('PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n'), 'v1: source address is not a valid IPv6 address'],
  ['v1: two "::"', Buffer.from('PROXY TCP6 1::2::3 ::1 1 2\r\n'), 'v1: source address is not a valid IPv6 address'],
  ['v1: port 65536', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n'), 'v1: source port must be a decimal in 0-65535 without leading zeros'],
  ['v1: a port with a leading zero', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 080\r\n'), 'v1: destination port must be a decimal in 0-65535 without leading zeros'],
  ['v1: a negative port', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n'), 'v1: source port must be a decimal in 0-65535 without leading zeros'],
  ['v1: a port with a plus sign', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n'), 'v1: source port must be a decimal in 0-65535 without leading zeros'],
  ['v1: a port in hex', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 0x50 2\r\n'), 'v1: source port must be a decimal in 0-65535 without leading zeros'],
  ['v1: a port in exponent form', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1e3 2\r\n'), 'v1: source port must be a decimal in 0-65535 without leading zeros'],
  ['v2: version 1', v2(0x11, 0x11, TCP4_BLOCK), 'v2: unsupported version 1'],
  ['v2: version 3, rejected before the rest arrives', Buffer.concat([V2_SIGNATURE, Buffer.from([0x31])]), 'v2: unsupported version 3'],
  ['v2: an unassigned command', v2(0x22, 0x11, TCP4_BLOCK), 'v2: unknown command 0x02'],
  ['v2: family AF_UNIX+1', v2(0x21, 0x41, TCP4_BLOCK), 'v2: unsupported address family/transport byte 0x41'],
  ['v2: transport 3', v2(0x21, 0x13, TCP4_BLOCK), 'v2: unsupported address family/transport byte 0x13'],
  ['v2: AF_INET with no transport', v2(0x21, 0x10, TCP4_BLOCK), 'v2: unsupported address family/transport byte 0x10'],
  ['v2: a bad family byte, rejected before the block arrives', v2(0x21, 0x99, TCP4_BLOCK).subarray(0, 16), 'v2: unsupported address family/transport byte 0x99'],
  ['v2: IPv4 block too short', v2(0x21, 0x11, TCP4_BLOCK.subarray(0, 11)), 'v2: address block of 11 bytes is too short for TCP over IPv4 (needs 12)'],
  ['v2: IPv6 block too short', v2(0x21, 0x21, TCP4_BLOCK), 'v2: address block of 12 bytes is too short for TCP over IPv6 (needs 36)'],
  ['v2: UNIX block too short', v2(0x21, 0x31, TCP6_BLOCK), 'v2: address block of 36 bytes is too short for UNIX stream (needs 216)'],
  ['v2: one byte over the size cap, rejected from the fixed part alone', v2(0x21, 0x11, Buffer.alloc(PROXY_HEADER_MAX_BYTES - 15)).subarray(0, 16), 'v2: header of 4097 bytes exceeds the 4096-byte limit'],
  ['v2: the largest length field', Buffer.concat([V2_SIGNATURE, Buffer.from([0x21, 0x11, 0xff, 0xff])]), 'v2: header of 65551 bytes exceeds the 4096-byte limit'],
];


describe('parseProxyHeader', () => {
  it.each(V1_VALID)('v1: %s', (_name, header, info) => {
    const length = Buffer.byteLength(header);
    expect(parseProxyHeader(Buffer.from(header))).toEqual({ status: 'ok', length, info });
    // The payload after the header is never part of it.
    expect(parseProxyHeader(Buffer.from(`${header}GET / HTTP/1.1\r\n\r\n`))).toEqual({ status: 'ok', length, info });
  });

  it.each(V2_VALID)('v2: %s', (_name, header, info) => {
    expect(parseProxyHeader(header)).toEqual({ status: 'ok', length: header.length, info });
    expect(parseProxyHeader(Buffer.concat([header, Buffer.from('\x16\x03\x01')]))).toEqual({ status: 'ok', length: header.length, info });
  });

  it.each(INVALID)('rejects %s', (_name, input, reason) => {
    const result = parseProxyHeader(input);
    expect(result.status).toBe('invalid');
    if (result.status === 'invalid') expect(result.reason).toMatch(typeof reason === 'string' ? new RegExp(`^${escapeRegExp(reason)}$`) : reason);
  });

  it.each([...V1_VALID.map(([name, header]) => [`v1 ${name}`, Buffer.from(header)] as const), ...V2_VALID.map(([name, header]) => [`v2 ${name}`, header] as const)])(
    'is incomplete on every strict prefix of %s, byte by byte',
    (_name, header) => {
      for (let n = 0; n < header.length; n++) {
        const result = parseProxyHeader(header.subarray(0, n));
        if (result.status !== 'incomplete') throw new Error(`prefix of ${n} bytes gave ${JSON.stringify(result)}`);
      }
      expect(parseProxyHeader(header)).toMatchObject({ status: 'ok', length: header.length });
    },
  );

  it.each<[string, Buffer]>([
    ['nothing yet', Buffer.alloc(0)],
    ['"PRO"', Buffer.from('PRO')],
    ['half the v2 signature', V2_SIGNATURE.subarray(0, 6)],
    ['a v1 line waiting for its LF', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r')],
    ['a v2 fixed part waiting for its block', v2(0x21, 0x11, TCP4_BLOCK).subarray(0, 20)],
    ['a LOCAL header waiting for the block it announced', v2(0x20, 0x00, TCP4_BLOCK).subarray(0, 16)],
  ])('is incomplete on %s', (_name, input) => {
    expect(parseProxyHeader(input)).toEqual({ status: 'incomplete' });
  });

  it('never throws on random input and never claims bytes it was not given', () => {
    const random = seededRandom(0x5eed);
    const bytes = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => Math.floor(random() * 256)));
    const alphabet = 'PROXY TCP46UNKOW0123456789abcdefABCDEF.:% \r\n';
    const text = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => alphabet[Math.floor(random() * alphabet.length)]).join(''), 'latin1');
    const valid = [...V1_VALID.map(([, h]) => Buffer.from(h)), ...V2_VALID.map(([, h]) => h)];
    const seeds: (() => Buffer)[] = [
      () => bytes(Math.floor(random() * 300)),
      () => Buffer.concat([Buffer.from('PROXY '), text(Math.floor(random() * 130))]),
      () => Buffer.concat([V2_SIGNATURE, bytes(Math.floor(random() * 300))]),
      () => Buffer.concat([V2_SIGNATURE, Buffer.from([0x21, [0x00, 0x11, 0x21, 0x12, 0x31][Math.floor(random() * 5)]!]), bytes(Math.floor(random() * 300))]),
      () => {
        // A valid header with one byte changed and a random cut.
        const mutated = Buffer.from(valid[Math.floor(random() * valid.length)]!);
        mutated[Math.floor(random() * mutated.length)] = Math.floor(random() * 256);
        return mutated.subarray(0, Math.floor(random() * (mutated.length + 1)));
      },
      () => Buffer.concat([valid[Math.floor(random() * valid.length)]!, bytes(Math.floor(random() * 50))]),
    ];
    const counts = { ok: 0, invalid: 0, incomplete: 0 };
    for (let i = 0; i < 25_000; i++) {
      const input = seeds[i % seeds.length]!();
      const result = parseProxyHeader(input);
      counts[result.status]++;
      if (result.status !== 'ok') continue;
      const { length, info } = result;
      if (length < 15 || length > input.length || length > PROXY_HEADER_MAX_BYTES) throw new Error(`bad length ${length} for ${input.toString('hex')}`);
      if (info.family === 'tcp4' && !(net.isIPv4(info.sourceAddress ?? '') && net.isIPv4(info.destAddress ?? ''))) throw new Error(`bad tcp4 ${JSON.stringify(info)}`);
      if (info.family === 'tcp6' && !(net.isIPv6(info.sourceAddress ?? '') && net.isIPv6(info.destAddress ?? ''))) throw new Error(`bad tcp6 ${JSON.stringify(info)}`);
    }
    // The generators must reach every outcome, or the fuzz is only exercising the first byte.
    expect(counts.ok).toBeGreaterThan(100);
    expect(counts.invalid).toBeGreaterThan(100);
    expect(counts.incomplete).toBeGreaterThan(100);
  });
});

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

// ---------------------------------------------------------------------------------------------
// Real sockets on loopback.

const V1_HEADER = Buffer.from('PROXY TCP4 203.0.113.7 192.0.2.10 51234 443\r\n');
const V2_HEADER = v2(0x21, 0x21, Buffer.concat([TCP6_BLOCK, AUTHORITY_TLV]));
const BODY = 'hello through the balancer';
const REQUEST_HEAD = `POST /echo HTTP/1.1\r\nHost: fn.example\r\nContent-Length: ${Buffer.byteLength(BODY)}\r\nConnection: close\r\n\r\n`;

interface Seen {
  readonly info: ProxyInfo | undefined;
  readonly peer: string | undefined;
  readonly body: string;
}

interface Running {
  readonly server: ProxyProtocolServer;
  readonly port: number;
  readonly seen: Seen[];
  readonly rejects: string[];
}

const running: ProxyProtocolServer[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
});

/** The handler every target shares: records what it can see of the client, echoes nothing back. */
function recordingHandler(seen: Seen[]) {
  return (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse): void => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      seen.push({ info: proxyInfoOf(req.socket), peer: peerAddressOf(req.socket), body });
      res.end('ok');
    });
  };
}

async function listen(target: net.Server, options: Partial<ProxyProtocolServerOptions> = {}): Promise<Omit<Running, 'seen'>> {
  const rejects: string[] = [];
  const server = proxyProtocolServer(target, { timeoutMs: 2_000, onReject: (_socket, reason) => rejects.push(reason), ...options });
  running.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as net.AddressInfo).port, rejects };
}

async function startHttp(options: Partial<ProxyProtocolServerOptions> = {}, serverOptions: http.ServerOptions = {}): Promise<Running> {
  const seen: Seen[] = [];
  const target = http.createServer(serverOptions, recordingHandler(seen));
  return { ...(await listen(target, options)), seen };
}

/** Writes each chunk (pausing between them so they arrive as separate reads) and collects everything until close. */
async function exchange(port: number, chunks: readonly Buffer[], gapMs = 25): Promise<{ response: string; closedAfterMs: number }> {
  const socket = net.connect(port, '127.0.0.1');
  socket.setNoDelay(true);
  socket.on('error', () => {}); // a reset from a rejecting server is an expected outcome here
  let response = '';
  socket.on('data', (chunk: Buffer) => (response += chunk.toString('latin1')));
  // Not events.once: it rejects on 'error', and a reset (rather than a FIN) from a rejecting
  // server is as good a close as any; which one arrives depends on timing.
  const closedAt = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now())));
  await once(socket, 'connect');
  const started = Date.now();
  for (const [i, chunk] of chunks.entries()) {
    if (i > 0) await sleep(gapMs);
    if (socket.destroyed) break;
    socket.write(chunk);
  }
  const closedAfterMs = (await closedAt) - started;
  return { response, closedAfterMs };
}

const TCP4_SEEN: Seen = { info: TCP4_INFO, peer: '203.0.113.7', body: BODY };
const TCP6_SEEN: Seen = { info: TCP6_INFO, peer: '2001:db8::7', body: BODY };

describe('proxyProtocolServer in front of an http server', () => {
  const request = Buffer.from(REQUEST_HEAD + BODY);
  it.each<[string, Buffer[], Seen]>([
    ['v1 header and request in one write', [Buffer.concat([V1_HEADER, request])], TCP4_SEEN],
    ['v1 header, request head and body in separate writes', [V1_HEADER, Buffer.from(REQUEST_HEAD), Buffer.from(BODY)], TCP4_SEEN],
    ['v1 header split mid-line, the rest arriving with the request', [V1_HEADER.subarray(0, 17), Buffer.concat([V1_HEADER.subarray(17), request])], TCP4_SEEN],
    ['v2 header (with a TLV) and request in one write', [Buffer.concat([V2_HEADER, request])], TCP6_SEEN],
    ['v2 header and request in separate writes', [V2_HEADER, request], TCP6_SEEN],
    ['v2 header split inside its address block', [V2_HEADER.subarray(0, 30), V2_HEADER.subarray(30), request], TCP6_SEEN],
  ])('the handler sees the PROXY source and the body intact: %s', async (_name, chunks, expected) => {
    const { port, seen, rejects } = await startHttp();
    const { response } = await exchange(port, chunks);
    expect(response).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\nok$/);
    expect(seen).toEqual([expected]);
    expect(rejects).toEqual([]);
  });

  it('reports the socket peer for a LOCAL health check', async () => {
    const { port, seen } = await startHttp();
    await exchange(port, [Buffer.concat([v2(0x20, 0x00), Buffer.from(REQUEST_HEAD + BODY)])]);
    expect(seen).toEqual([{ info: LOCAL_INFO, peer: '127.0.0.1', body: BODY }]);
  });

  it('keeps the header for every request on a keep-alive connection', async () => {
    const { port, seen } = await startHttp();
    const keepAlive = REQUEST_HEAD.replace('Connection: close', 'Connection: keep-alive') + BODY;
    const { response } = await exchange(port, [Buffer.concat([V1_HEADER, Buffer.from(keepAlive + REQUEST_HEAD + BODY)])]);
    expect(response.match(/HTTP\/1\.1 200 OK/g)).toHaveLength(2);
    expect(seen).toEqual([TCP4_SEEN, TCP4_SEEN]);
  });

  it('closes a connection that sends no header, without calling the handler', async () => {
    const { port, seen, rejects } = await startHttp();
    const { response } = await exchange(port, [request]);
    expect(response).toBe('');
    expect(seen).toEqual([]);
    expect(rejects).toEqual(['missing PROXY protocol header']);
  });

  it('closes a connection with a malformed header', async () => {
    const { port, seen, rejects } = await startHttp();
    const { response } = await exchange(port, [Buffer.concat([Buffer.from('PROXY TCP4 203.0.113.7 192.0.2.10 51234 0443\r\n'), request])]);
    expect(response).toBe('');
    expect(seen).toEqual([]);
    expect(rejects).toEqual(['v1: destination port must be a decimal in 0-65535 without leading zeros']);
  });

  it('closes a connection that stalls mid-header once timeoutMs has passed', async () => {
    const { port, seen, rejects } = await startHttp({ timeoutMs: 300 });
    const { response, closedAfterMs } = await exchange(port, [V1_HEADER.subarray(0, 20)]);
    expect(response).toBe('');
    expect(closedAfterMs).toBeGreaterThanOrEqual(250);
    expect(closedAfterMs).toBeLessThan(2_000);
    expect(seen).toEqual([]);
    expect(rejects).toEqual(['no complete PROXY protocol header within 300 ms']);
  });

  it('does not let a client extend the deadline by dribbling the header a byte at a time', async () => {
    const { port, rejects } = await startHttp({ timeoutMs: 300 });
    const bytes = [...V1_HEADER].map((byte) => Buffer.from([byte]));
    // 46 bytes × 100 ms would take ~4.6 s; closed at ~300 ms, with room for a loaded machine.
    const { closedAfterMs } = await exchange(port, bytes, 100);
    expect(closedAfterMs).toBeLessThan(2_500);
    expect(rejects).toEqual(['no complete PROXY protocol header within 300 ms']);
  });

  it('refuses a peer that is not a trusted proxy before reading anything', async () => {
    const { port, seen, rejects } = await startHttp({ isTrustedPeer: (ip) => ip === '10.0.0.1' });
    const { response } = await exchange(port, [Buffer.concat([V1_HEADER, request])]);
    expect(response).toBe('');
    expect(seen).toEqual([]);
    expect(rejects).toEqual(['peer 127.0.0.1 is not a trusted proxy']);
  });

  it("keeps the target's headersTimeout working although the target never listens itself", async () => {
    const { port, seen } = await startHttp({}, { headersTimeout: 300, requestTimeout: 300, connectionsCheckingInterval: 50 });
    const { response, closedAfterMs } = await exchange(port, [Buffer.concat([V1_HEADER, Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n')])]);
    expect(response).toMatch(/^HTTP\/1\.1 408 /);
    expect(closedAfterMs).toBeLessThan(2_000);
    expect(seen).toEqual([]);
  });

  it('close() also closes idle keep-alive connections handed to the target', async () => {
    const { server, port } = await startHttp();
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => {});
    const closed = new Promise((resolve) => socket.once('close', resolve)); // a reset counts as closed too
    await once(socket, 'connect');
    socket.write(Buffer.concat([V1_HEADER, Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n\r\n')]));
    await once(socket, 'data');
    const started = Date.now();
    await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
    await closed;
    // At once, not when the connection's keep-alive timeout (Node's default: 5 s) ends it.
    expect(Date.now() - started).toBeLessThan(3_000);
  });
});

// ---------------------------------------------------------------------------------------------
// TLS: a throwaway self-signed certificate made by the project's own generator.

/**
 * A stand-in for the L4 balancer: accepts the client's connection, opens one to the router and
 * sends the header, either in the same write as the client's first bytes (the TLS ClientHello) or
 * on its own well before them.
 */
async function startBalancer(routerPort: number, header: Buffer, coalesce: boolean): Promise<net.Server> {
  const balancer = net.createServer((client) => {
    const upstream = net.connect(routerPort, '127.0.0.1');
    upstream.setNoDelay(true);
    // Either side going away takes the other with it, as it would through a real balancer.
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.on('error', () => {});
    upstream.on('error', () => {});
    if (!coalesce) upstream.write(header);
    client.once('data', (first: Buffer) => {
      client.pause();
      const forward = (): void => {
        upstream.write(coalesce ? Buffer.concat([header, first]) : first);
        client.pipe(upstream);
        upstream.pipe(client);
      };
      if (coalesce) forward();
      else setTimeout(forward, 25);
    });
  });
  balancer.listen(0, '127.0.0.1');
  await once(balancer, 'listening');
  return balancer;
}

describe('proxyProtocolServer in front of TLS servers', () => {
  let key: string;
  let cert: string;
  const balancers: net.Server[] = [];

  beforeAll(async () => {
    ({ key, cert } = await generateSelfSignedCertificate({ names: ['localhost'] }));
  });
  afterEach(async () => {
    await Promise.all(balancers.splice(0).map((b) => new Promise<void>((resolve) => b.close(() => resolve()))));
  });

  it.each<[string, Buffer, boolean, Seen]>([
    ['v1 header in the same write as the ClientHello', V1_HEADER, true, TCP4_SEEN],
    ['v1 header written before the ClientHello', V1_HEADER, false, TCP4_SEEN],
    ['v2 header in the same write as the ClientHello', V2_HEADER, true, TCP6_SEEN],
  ])('https: the handler sees the PROXY source through the TLSSocket (%s)', async (_name, header, coalesce, expected) => {
    const seen: Seen[] = [];
    const target = https.createServer({ key, cert }, recordingHandler(seen));
    // What was left in the socket at hand-off: the ClientHello, when it came with the header.
    const unshifted: number[] = [];
    target.prependListener('connection', (socket: net.Socket) => unshifted.push(socket.readableLength));
    const { port, rejects } = await listen(target);
    const balancer = await startBalancer(port, header, coalesce);
    balancers.push(balancer);

    const status = await new Promise<number | undefined>((resolve, reject) => {
      const req = https.request({
        host: '127.0.0.1',
        port: (balancer.address() as net.AddressInfo).port,
        servername: 'localhost',
        ca: cert,
        method: 'POST',
        path: '/echo',
        agent: false,
      }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      });
      req.on('error', reject);
      req.end(BODY);
    });

    expect(status).toBe(200);
    expect(seen).toEqual([expected]);
    expect(rejects).toEqual([]);
    // The point of the coalesced cases: the ClientHello sat in the socket's buffer at hand-off and survived.
    if (coalesce) expect(unshifted[0]).toBeGreaterThan(0);
  });

  it('http2: the compat request socket (a Proxy of the TLSSocket) still leads to the header', async () => {
    const seen: Seen[] = [];
    const target = http2.createSecureServer({ key, cert }, recordingHandler(seen));
    const { port } = await listen(target);
    const balancer = await startBalancer(port, V1_HEADER, true);
    balancers.push(balancer);

    const session = http2.connect(`https://127.0.0.1:${(balancer.address() as net.AddressInfo).port}`, { ca: cert, servername: 'localhost' });
    try {
      const status = await new Promise<number | undefined>((resolve, reject) => {
        session.on('error', reject);
        const stream = session.request({ ':method': 'POST', ':path': '/echo' });
        let code: number | undefined;
        stream.on('response', (headers) => (code = Number(headers[':status'])));
        stream.on('error', reject);
        stream.resume();
        stream.on('end', () => resolve(code));
        stream.end(BODY);
      });
      expect(status).toBe(200);
    } finally {
      session.close();
    }
    expect(seen).toEqual([TCP4_SEEN]);
  });
});
