import { describe, expect, it, vi } from 'vitest';
import { acceptableRequestId, caseInsensitiveIs, downstreamResponseHeaders, downstreamTrailers, earlyHintLinks, foreignTransferCoding, nodeWritesLink, upstreamRequestHeaders, type ForwardingContext } from '../../src/proxy/headers.js';
import { forwardingContext, TRACE } from '../support/forwarding.js';

const ctx = forwardingContext;
/** The flat list folded into an object (a repeated name becomes a list), for readable expectations. */
function folded(flat: readonly string[]): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (let i = 0; i < flat.length; i += 2) {
    const [name, value] = [flat[i]!, flat[i + 1]!];
    const earlier = out[name];
    out[name] = earlier === undefined ? value : Array.isArray(earlier) ? [...earlier, value] : [earlier, value];
  }
  return out;
}
const up = (raw: string[], over?: Partial<ForwardingContext>) => folded(upstreamRequestHeaders(raw, ctx(over)));

/** An answer's fields as undici gives them: [name, value, …] in bytes. */
const raw = (...pairs: string[]) => pairs.map((p) => Buffer.from(p, 'latin1'));

describe('upstreamRequestHeaders', () => {
  // Client field names are lower-cased through a memo of the last request's by position: what goes
  // upstream must not depend on what came before. Each request's list against the same request
  // sent alone to a fresh module (no memo history).
  it('gives each request the same list whatever requests came before it', async () => {
    const requests: string[][] = [
      ['Host', 'h', 'User-Agent', 'ua', 'Accept', '*/*'],
      ['Host', 'h', 'User-Agent', 'ua', 'Accept', '*/*'],
      ['host', 'h', 'X-Edge-Fn', 'spoof', 'Accept', '*/*'],
      ['Host', 'h', 'X_Edge_Org', 'spoof', 'Cookie', 'a=1', 'COOKIE', 'b=2'],
      ['Connection', 'x-secret', 'X-Secret', 'v', 'User-Agent', 'ua', 'X-Forwarded-For', '203.0.113.9'],
      ['X-Secret', 'v', 'User-Agent', 'ua', 'Connection', 'close', 'X-Forwarded-For', '203.0.113.9'],
      ['Host', 'h', 'Traceparent', 'client', 'Tracestate', 'k=v', 'True-Client-IP', '203.0.113.9'],
      Array.from({ length: 40 }, (_, i) => [i % 2 === 0 ? `X-Field-${i}` : `x-FIELD-${i}`, String(i)]).flat(),
      Array.from({ length: 40 }, (_, i) => [`X-Field-${i}`, String(i)]).flat(),
      ['Host', 'h', 'User-Agent', 'ua', 'Accept', '*/*'],
    ];
    const sequence = requests.map((raw) => upstreamRequestHeaders(raw.map((text) => [...text].join('')), ctx()));
    for (const [i, raw] of requests.entries()) {
      vi.resetModules();
      const fresh = (await import('../../src/proxy/headers.js')).upstreamRequestHeaders;
      expect(sequence[i]).toEqual(fresh(raw, ctx()));
    }
    expect(sequence[3]).toContain('a=1; b=2');
    expect(sequence[4]).not.toContain('x-secret');
    expect(sequence[5]).toContain('x-secret');
  });

  it('lists each header once, in pairs, with a repeated client header repeated', () => {
    const flat = upstreamRequestHeaders(['Accept', 'a', 'accept', 'b', 'Host', 'x'], ctx());
    expect(flat.length % 2).toBe(0);
    expect(flat.filter((_, i) => i % 2 === 0 && flat[i] === 'host')).toHaveLength(1);
    expect(flat.slice(0, 4)).toEqual(['accept', 'a', 'accept', 'b']);
  });

  it('sets what the router determined, whatever the client sent', () => {
    expect(up(['Host', 'EVIL.example', 'X-Request-Id', 'client-id', 'Accept', '*/*'])).toEqual({
      accept: '*/*',
      host: 'fn-org.example.com',
      'x-real-ip': '198.51.100.7',
      'x-forwarded-for': '198.51.100.7',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'fn-org.example.com',
      forwarded: 'for=198.51.100.7;host="fn-org.example.com";proto=https',
      'x-request-id': 'req-1',
      traceparent: TRACE,
      'x-edge-fn': 'fn',
      'x-edge-org': 'org',
    });
  });

  it.each([
    ['a hop-by-hop header', ['Keep-Alive', 'timeout=5', 'TE', 'trailers', 'Upgrade', 'h2c', 'Expect', '100-continue'], ['keep-alive', 'te', 'upgrade', 'expect']],
    ['a header named in Connection', ['Connection', 'X-Secret, close', 'X-Secret', '1'], ['connection', 'x-secret']],
    ['Connection naming our own forwarding header', ['Connection', 'X-Forwarded-For'], ['connection']],
    // The name is read in any case (a first-letter test comes before lower-casing it).
    ['headers named in a Connection spelled in any case', ['connection', 'x-low', 'x-low', '1', 'CONNECTION', 'X-Up', 'x-up', '2', 'cOnnection', 'x-mixed', 'X-Mixed', '3'], ['connection', 'x-low', 'x-up', 'x-mixed']],
    ['an x-edge-* header from the client', ['X-Edge-Region', 'fra', 'x-edge-org', 'other'], ['x-edge-region']],
    ['an underscore spelling of an owned header', ['x_edge_org', 'other', 'X_Forwarded_For', '1.2.3.4'], ['x_edge_org', 'x_forwarded_for']],
    ['client-address headers from an untrusted peer', ['True-Client-IP', '1.2.3.4', 'CF-Connecting-IP', '1.2.3.4', 'X-Client-IP', '1.2.3.4'], ['true-client-ip', 'cf-connecting-ip', 'x-client-ip']],
    ['forwarding headers from an untrusted peer', ['X-Forwarded-For', '1.2.3.4', 'Forwarded', 'for=1.2.3.4', 'X-Real-IP', '1.2.3.4'], []],
    [
      "the rest of the forwarding family from an untrusted peer (port, scheme, prefix, original URL: frameworks believe them)",
      ['X-Forwarded-Port', '80', 'X-Forwarded-Ssl', 'off', 'X-Forwarded-Scheme', 'http', 'X-Forwarded-Prefix', '//evil.example', 'X-Original-URL', '/admin', 'X-Forwarded-Server', 'evil', 'X-Rewrite-URL', '/admin', 'Front-End-Https', 'off'],
      ['x-forwarded-port', 'x-forwarded-ssl', 'x-forwarded-scheme', 'x-forwarded-prefix', 'x-original-url', 'x-forwarded-server', 'x-rewrite-url', 'front-end-https'],
    ],
    [
      'identity an auth proxy asserts in the forwarding family, in any spelling, from an untrusted peer',
      ['X-Forwarded-User', 'admin', 'X-Forwarded-Email', 'admin@example.com', 'X-Forwarded-Groups', 'admins', 'X-Forwarded-Access-Token', 'forged', 'X-Forwarded-Client-Cert', 'By=spiffe://x', 'x_forwarded_user', 'admin'],
      ['x-forwarded-user', 'x-forwarded-email', 'x-forwarded-groups', 'x-forwarded-access-token', 'x-forwarded-client-cert', 'x_forwarded_user'],
    ],
    // httpoxy (CVE-2016-5385): CGI turns `Proxy` into HTTP_PROXY, which HTTP libraries take for
    // their outbound proxy: a client could send a function's outgoing calls through its server.
    ['Proxy, in any spelling, from any peer', ['Proxy', 'http://evil.example:8080', 'proxy', 'x'], ['proxy']],
    ["a client's traceparent (the router's replaces it) and a tracestate without a valid one", ['traceparent', '00-bad', 'tracestate', 'a=1'], ['tracestate']],
  ])('drops %s', (_name, raw, absent) => {
    const out = up(raw);
    for (const name of absent) expect(out[name], name).toBeUndefined();
    expect(out['x-forwarded-for']).toBe('198.51.100.7');
    expect(out.forwarded).toBe('for=198.51.100.7;host="fn-org.example.com";proto=https');
    expect(out['x-edge-org']).toBe('org');
    expect(out.traceparent).toBe(TRACE);
  });

  it("extends a trusted proxy's X-Forwarded-* headers instead of replacing them, and keeps its client-address headers", () => {
    const out = up(['X-Forwarded-For', '203.0.113.9', 'X-Forwarded-Proto', 'http', 'X-Forwarded-Host', 'www.example', 'True-Client-IP', '203.0.113.9', 'X-Forwarded-Port', '443', 'X-Forwarded-Prefix', '/app', 'X-Forwarded-User', 'ada'], { peerTrusted: true, clientIp: '203.0.113.9' });
    expect(out).toMatchObject({
      'x-forwarded-user': 'ada',
      'x-forwarded-port': '443',
      'x-forwarded-prefix': '/app',
      'x-forwarded-for': '203.0.113.9, 198.51.100.7',
      'x-forwarded-proto': 'http',
      'x-forwarded-host': 'www.example',
      'true-client-ip': '203.0.113.9',
      'x-real-ip': '203.0.113.9',
    });
  });

  it("takes from a trusted proxy only the chain it was configured to extend: the other kind came from its client and is replaced", () => {
    const sent = ['X-Forwarded-For', '203.0.113.9', 'Forwarded', 'for=1.2.3.4', 'X-Forwarded-Proto', 'http', 'X-Forwarded-Host', 'spoof.example', 'X-Forwarded-Ssl', 'on', 'X-Forwarded-User', 'root'];
    const ours = 'for=198.51.100.7;host="fn-org.example.com";proto=https';
    // X-Forwarded-For configured (the default): a client's Forwarded passed through the proxy is not extended.
    expect(up(sent, { peerTrusted: true })).toMatchObject({ 'x-forwarded-for': '203.0.113.9, 198.51.100.7', 'x-forwarded-proto': 'http', 'x-forwarded-host': 'spoof.example', 'x-forwarded-ssl': 'on', 'x-forwarded-user': 'root', forwarded: ours });
    // Forwarded configured: the X-Forwarded-* family is the client's, replaced by what this router
    // saw; the rest of the family (-Ssl, -User, …) dropped, as for an untrusted peer.
    const viaForwarded = up(sent, { peerTrusted: true, trustedChain: 'forwarded' });
    expect(viaForwarded).toMatchObject({
      forwarded: `for=1.2.3.4, ${ours}`,
      'x-forwarded-for': '198.51.100.7',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'fn-org.example.com',
    });
    expect(viaForwarded).not.toHaveProperty('x-forwarded-ssl');
    expect(viaForwarded).not.toHaveProperty('x-forwarded-user');
  });

  it('brackets and quotes an IPv6 peer in Forwarded (RFC 7239 §6)', () => {
    expect(up([], { peerIp: '2001:db8::1' }).forwarded).toBe('for="[2001:db8::1]";host="fn-org.example.com";proto=https');
  });

  it("follows the peer, host and protocol from one request to the next (this hop's element is reused only while all three repeat)", () => {
    // Each change alone, from the same request before it, and back.
    const usual = 'for=198.51.100.7;host="fn-org.example.com";proto=https';
    const steps: [Partial<ForwardingContext>, string][] = [
      [{}, usual],
      [{}, usual],
      [{ peerIp: '198.51.100.8' }, 'for=198.51.100.8;host="fn-org.example.com";proto=https'],
      [{}, usual],
      [{ host: 'other-org.example.com' }, 'for=198.51.100.7;host="other-org.example.com";proto=https'],
      [{}, usual],
      [{ proto: 'http' }, 'for=198.51.100.7;host="fn-org.example.com";proto=http'],
      [{}, usual],
      [{ peerIp: '2001:db8::1' }, 'for="[2001:db8::1]";host="fn-org.example.com";proto=https'],
      [{}, usual],
    ];
    for (const [change, forwarded] of steps) expect(up([], change).forwarded, JSON.stringify(change)).toBe(forwarded);
  });

  it("passes a client's valid trace with its tracestate", () => {
    const client = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    expect(up(['traceparent', client, 'tracestate', 'a=1'], { trace: { traceparent: client, fromClient: true } })).toMatchObject({ traceparent: client, tracestate: 'a=1' });
  });

  it('keeps repeated headers as a list, and skips HTTP/2 pseudo-headers', () => {
    expect(up([':method', 'GET', ':path', '/', 'Accept', 'a', 'accept', 'b'])).toMatchObject({ accept: ['a', 'b'] });
    expect(Object.keys(up([':authority', 'x']))).not.toContain(':authority');
  });
});

describe('cookies', () => {
  it('joins the cookie fields an HTTP/2 client sends one by one into one line, "; "-separated, where the first was', () => {
    const out = upstreamRequestHeaders(['cookie', 'a=1', 'accept', '*/*', 'cookie', 'b=2', 'Cookie', 'c=3'], forwardingContext());
    expect(out.slice(0, 4)).toEqual(['cookie', 'a=1; b=2; c=3', 'accept', '*/*']);
    expect(out.filter((v, i) => i % 2 === 0 && v === 'cookie')).toHaveLength(1);
  });
});

describe('downstreamResponseHeaders', () => {
  // undici hands the head over raw: Buffers, in the region's case, repeats as separate pairs.
  it.each([
    [['Content-Type', 'text/plain', 'Transfer-Encoding', 'chunked', 'Keep-Alive', 'timeout=5'], ['content-type', 'text/plain']],
    // Connection may name headers before or after itself.
    [['X-Internal', 'secret', 'Connection', 'X-Internal, keep-alive', 'x-kept', '1', 'x-other', '2', 'Connection', 'x-other'], ['x-kept', '1']],
    [['Connection', 'Keep-Alive', 'Keep-Alive', 'timeout=5', 'x-kept', '1'], ['x-kept', '1']],
    [['Connection', 'close', 'Close', 'named', 'x-kept', '1'], ['x-kept', '1']],
    [['Set-Cookie', 'a=1', 'Upgrade', 'h2c', 'set-cookie', 'b=2'], ['set-cookie', 'a=1', 'set-cookie', 'b=2']],
    [['X-Latin', 'caf\u00e9'], ['x-latin', 'caf\u00e9']],
    // Well-known names in any case, names that only start like one, and names undici does not know.
    [['CONTENT-LENGTH', '3', 'content-lengthx', '4', 'Content-Le', '5', 'X-Fn-Thing', '6', 'X-\u00c9t\u00e9', '7'], ['content-length', '3', 'content-lengthx', '4', 'content-le', '5', 'x-fn-thing', '6', 'x-\u00e9t\u00e9', '7']],
    [['TE', 'trailers', 'Proxy-Connection', 'keep-alive', 'Trailer', 'x', 'Date', 'd'], ['date', 'd']],
    // Lookalikes of hop-by-hop names, differing in a byte that is not a letter's case, are other names: kept.
    [['Keep_Alive', '1', 'Connection\u00a0', '2', 'Connectio\u00ce', '3', 'connection', 'close'], ['keep_alive', '1', 'connection\u00a0', '2', 'connectio\u00ee', '3']],
    // The edge's namespace is the router's to fill: a function's own x-edge-* never reaches the client.
    [['X-Edge-Region', 'evil', 'x-edge-route', 'spoof', 'x-edged', '1'], ['x-edged', '1']],
    // …but for the orchestrator's word on the container that answered.
    [['X-Edge-Container', 'c7; cold', 'x-edge-served-by', 'fra'], ['x-edge-container', 'c7; cold']],
    // The request id is the router's (it logged it, and sent it to the region): a function's own,
    // or its framework's echo of the one it got, would make two (joined into one over HTTP/2).
    [['X-Request-Id', 'forged', 'x-request-ids', '1'], ['x-request-ids', '1']],
    // `keep-alive` is read in the bytes: a value that only looks like it names a field to drop.
    [['Connection', 'KEEP-ALIVE', 'keep-alivf', '1', 'x', '2'], ['keep-alivf', '1', 'x', '2']],
    [['Connection', 'keep_alive', 'keep_alive', '1', 'x', '2'], ['x', '2']],
    [['Connection', 'keep-alivf', 'Keep-Alivf', '1', 'x', '2'], ['x', '2']],
    // The edge writes Server-Timing's `route` and `upstream` after these: a function's entries of
    // those names would be read as the edge's. Its other metrics stay.
    [['Server-Timing', 'route;dur=0, db;dur=5', 'server-timing', 'upstream;dur=0', 'x', '2'], ['server-timing', 'db;dur=5', 'x', '2']],
  ])('%j → %j', (from, to) => expect(downstreamResponseHeaders(raw(...from))).toEqual(to));

  it("leaves out a 204's Content-Length (RFC 9110 §8.6), and keeps a 304's (its 200's)", () => {
    expect(downstreamResponseHeaders(raw('Content-Length', '5', 'ETag', '"v1"'), 204)).toEqual(['etag', '"v1"']);
    expect(downstreamResponseHeaders(raw('Content-Length', '5', 'ETag', '"v1"'), 304)).toEqual(['content-length', '5', 'etag', '"v1"']);
  });
});

describe('downstreamTrailers', () => {
  it('keeps the fields a trailer section may carry, joins repeats, and drops framing, control, hop-by-hop and edge fields', () => {
    expect({ ...downstreamTrailers(raw('X-Checksum', 'sha256=abc', 'Server-Timing', 'db;dur=1', 'server-timing', 'cache;dur=2, route;dur=0', 'Server-Timing', 'upstream;dur=0', 'Content-Length', '5', 'Set-Cookie', 'a=1', 'Connection', 'close', 'X-Edge-Region', 'spoof', 'grpc-status', '0')) }).toEqual({
      'x-checksum': 'sha256=abc',
      'server-timing': 'db;dur=1, cache;dur=2',
      'grpc-status': '0',
    });
  });

  it('is undefined when nothing is left to send', () => {
    expect(downstreamTrailers([])).toBeUndefined();
    expect(downstreamTrailers(raw('Content-Length', '5', 'x-edge-route', 'x'))).toBeUndefined();
  });
});

describe('foreignTransferCoding', () => {
  it.each([
    [['Content-Type', 'text/plain'], undefined],
    [['Transfer-Encoding', 'chunked'], undefined],
    [['transfer-encoding', ' Chunked '], undefined],
    [['Transfer-Encoding', 'CHUNKED'], undefined],
    // Read in the bytes only when it is exactly `chunked`; a lookalike of the same length is a coding.
    [['Transfer-Encoding', 'chunkes'], 'chunkes'],
    [['Transfer-Encoding', 'chunk\u00e5d'], 'chunk\u00e5d'],
    [['Transfer-Encoding', 'gzip, chunked'], 'gzip, chunked'],
    [['Transfer-Encoding', 'gzip'], 'gzip'],
    [['Transfer-Encoding', 'chunked', 'TRANSFER-ENCODING', 'deflate'], 'deflate'],
    // Same length, another name.
    [['transfer-encodinx', 'gzip', 'xransfer-encoding', 'gzip'], undefined],
  ])('%j → %j', (from, to) => expect(foreignTransferCoding(raw(...from))).toBe(to));
});

describe('earlyHintLinks', () => {

  it('takes the Link fields only, one link-value each, splitting a field only where the next link begins', () => {
    const links = earlyHintLinks(
      raw('Link', '</a.css>; rel=preload; as=style, </b.js>; rel=preload', 'set-cookie', 'a=1', 'LINK', '</c>; rel=preconnect; title="x, y",<d>'),
      false,
    );
    expect(links).toEqual(['</a.css>; rel=preload; as=style', '</b.js>; rel=preload', '</c>; rel=preconnect; title="x, y"', '<d>']);
  });

  it("for HTTP/1, leaves out the links Node's writer refuses (it refused the whole 103 for one), keeping the others", () => {
    const field = '</a.css>; rel=preload; as=style, </h.jpg>; rel=preload; imagesrcset="a.jpg 1x, b.jpg 2x", </c>;rel="preconnect";crossorigin, </d>;';
    expect(earlyHintLinks(raw('link', field), true)).toEqual(['</a.css>; rel=preload; as=style', '</c>;rel="preconnect";crossorigin']);
    // Each kept one is what Node 20's validateLinkHeaderValue accepts, each left out one it refused (checked against it).
    expect(earlyHintLinks(raw('link', '</a>; rel="x,y", </b> ; rel=x, </c>; rel="pre"load, </d>; t="x y"'), true)).toEqual(['</a>; rel="x,y"', '</b> ; rel=x']);
  });

  it('gives nothing for a 103 without links', () => {
    expect(earlyHintLinks(raw('x-other', '1', 'link', ' '), false)).toEqual([]);
  });

  it("refuses in one pass a link on which Node's own check backtracks exponentially", () => {
    // With Node's expression, 16 of these parts took 2 s and each one more three times as long.
    const hostile = `</x>${'; a=a=a'.repeat(40)};`;
    expect(nodeWritesLink(hostile)).toBe(false);
    expect(earlyHintLinks(raw('link', `</ok>; rel=preload, ${hostile}`), true)).toEqual(['</ok>; rel=preload']);
  });
});

describe('nodeWritesLink', () => {
  /** Node 20's validateLinkHeaderValue pattern (lib/internal/validators.js): the oracle, on values too short to blow up. */
  const NODE_LINK_PATTERN = /^(?:<[^>]*>)(?:\s*;\s*[^;"\s]+(?:=(")?[^;"\s]*\1)?)*$/;

  it('accepts exactly what Node does, on every value of up to six characters after a URI', () => {
    const alphabet = ['<', '>', ';', '"', '=', ' ', '\t', 'a'];
    let values = [''];
    let compared = 0;
    for (let length = 0; length <= 6; length++) {
      for (const tail of values) {
        for (const value of [tail, `<u>${tail}`]) {
          compared++;
          if (nodeWritesLink(value) !== NODE_LINK_PATTERN.test(value)) expect.fail(`${JSON.stringify(value)}: Node ${NODE_LINK_PATTERN.test(value)}`);
        }
      }
      values = values.flatMap((v) => alphabet.map((c) => v + c));
    }
    expect(compared).toBeGreaterThan(500_000);
  });

  it.each([
    ['</a.css>; rel=preload; as=style', true],
    ['</a>; rel="preload"', true],
    ['</a> ; rel=x', true],
    ['</a>; rel=\u00a0x', false],
    ['</a>; t="x y"', false],
    ['</a>;', false],
    ['</a>', true],
    ['/a', false],
  ])('%j → %s', (value, expected) => {
    expect(nodeWritesLink(value)).toBe(expected);
    expect(NODE_LINK_PATTERN.test(value)).toBe(expected);
  });
});

describe('caseInsensitiveIs', () => {
  it.each([
    ['chunked', 'chunked', true],
    ['ChUnKeD', 'chunked', true],
    ['chunke', 'chunked', false],
    ['chunked ', 'chunked', false],
    // A byte matches a letter only as that letter in either case: 0x0d | 0x20 is '-', 0xc3 | 0x20 is 'ã'.
    ['keep\ralive', 'keep-alive', false],
    ['keep_alive', 'keep-alive', false],
    ['KEEP-ALIVE', 'keep-alive', true],
    ['chunk\u00c5d', 'chunk\u00e5d', false],
  ])('%j is %j: %s', (value, lower, expected) => {
    expect(caseInsensitiveIs(Buffer.from(value, 'latin1'), lower)).toBe(expected);
    expect(caseInsensitiveIs(value, lower)).toBe(expected || value.toLowerCase() === lower);
  });
});

describe('acceptableRequestId', () => {
  it.each([
    ['abc-123', true],
    ['a.b:c_d', true],
    ['x'.repeat(128), true],
    ['x'.repeat(129), false],
    ['', false],
    ['<script>', false],
    ['with space', false],
    [undefined, false],
  ])('%j → %s', (value, ok) => expect(acceptableRequestId(value)).toBe(ok));
});
