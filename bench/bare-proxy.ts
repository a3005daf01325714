/**
 * The bare Node reference proxy for `npm run bench`: node:http and node:https servers whose one
 * handler passes each request to a single undici Pool (`Pool.stream()`) and writes the upstream
 * status, headers and body straight into the response. It must stay featureless (no routing,
 * header rewriting beyond hop-by-hop, logging or failover): it is the fastest plain Node proxy
 * measured (docs/performance-notes.md), the ceiling the router is compared against.
 *
 * Usage: node dist/bench/bare-proxy.js <origin-url> <http-port> <https-port> <cert.pem> <key.pem> [<h2-port>]
 * (BENCH_BARE_WORKERS=n: n cluster workers)
 * (the HTTP/2 listener uses node:http2's stream API, as the router does: about a quarter cheaper
 * per request than its compatibility layer).
 */
import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import { createSecureServer, type IncomingHttpHeaders as Http2Headers, type ServerHttp2Stream } from 'node:http2';
import { Pool, type Dispatcher } from 'undici';

const [originUrl, httpPortText, httpsPortText, certFile, keyFile, h2PortText] = process.argv.slice(2);
if (originUrl === undefined || httpPortText === undefined || httpsPortText === undefined || certFile === undefined || keyFile === undefined) {
  console.error('usage: bare-proxy <origin-url> <http-port> <https-port> <cert.pem> <key.pem>');
  process.exit(2);
}

/** Hop-by-hop fields end at each hop (RFC 9110 §7.6.1); undici also refuses most of them. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

const pool = new Pool(originUrl, { connections: 128, pipelining: 1 });

function endToEnd(headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const name in headers) {
    const value = headers[name];
    // HTTP/2 pseudo-headers (:method, :path, …) are not fields.
    if (value !== undefined && !HOP_BY_HOP.has(name) && name.charCodeAt(0) !== 58) out[name] = value;
  }
  return out;
}

/** The factory writes the head into the client response (carried as `opaque`) and returns it for the body. */
function intoResponse({ statusCode, headers, opaque }: Dispatcher.StreamFactoryData<ServerResponse>): ServerResponse {
  opaque.writeHead(statusCode, endToEnd(headers));
  return opaque;
}

function forward(req: IncomingMessage, res: ServerResponse): void {
  const method = req.method ?? 'GET';
  pool.stream(
    {
      path: req.url ?? '/',
      method: method as Dispatcher.HttpMethod,
      headers: endToEnd(req.headers),
      body: method === 'GET' || method === 'HEAD' ? null : req,
      opaque: res,
    },
    intoResponse,
    (err) => {
      if (err === null) return;
      if (res.headersSent) res.destroy(err);
      else res.writeHead(502, { 'content-type': 'text/plain' }).end('bad gateway\n');
    },
  );
}

const tls = { cert: readFileSync(certFile), key: readFileSync(keyFile), minVersion: 'TLSv1.2' as const };
/** HTTP/2: the same, through the stream API (the response head goes out with `respond`). */
function intoStream({ statusCode, headers, opaque }: Dispatcher.StreamFactoryData<ServerHttp2Stream>): ServerHttp2Stream {
  opaque.respond({ ...endToEnd(headers), ':status': statusCode });
  return opaque;
}

function forwardStream(stream: ServerHttp2Stream, headers: Http2Headers): void {
  stream.on('error', () => undefined); // a reset stream must not take the process down
  const method = headers[':method'] ?? 'GET';
  pool.stream(
    {
      path: headers[':path'] ?? '/',
      method: method as Dispatcher.HttpMethod,
      headers: endToEnd(headers),
      body: method === 'GET' || method === 'HEAD' ? null : stream,
      opaque: stream,
    },
    intoStream,
    (err) => {
      if (err === null || stream.destroyed || stream.closed) return;
      if (stream.headersSent) stream.destroy(err);
      else stream.respond({ ':status': 502, 'content-type': 'text/plain' }, { endStream: true });
    },
  );
}

function serve(): void {
  createServer(forward).listen(Number(httpPortText), '127.0.0.1');
  createTlsServer(tls, forward).listen(Number(httpsPortText), '127.0.0.1');
  if (h2PortText !== undefined) {
    // Nagle off from accept, as Node's https server has it and the router sets it (an HTTP/2
    // session turns it off itself, but only after the handshake).
    createSecureServer({ ...tls, noDelay: true }).on('stream', forwardStream).listen(Number(h2PortText), '127.0.0.1');
  }
}

// BENCH_BARE_WORKERS=n (n > 1): n processes sharing the listeners through node:cluster, as
// `router --workers n` runs (npm run bench:workers); the primary only forks them.
const workers = Number(process.env.BENCH_BARE_WORKERS ?? '1');
if (workers > 1 && cluster.isPrimary) for (let i = 0; i < workers; i++) cluster.fork();
else serve();
