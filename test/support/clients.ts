/** HTTPS clients for tests: undici over HTTP/1.1 and node:http2, both trusting the dev certificate. */
import { connect as http2Connect, type IncomingHttpHeaders } from 'node:http2';
import { Agent, request } from 'undici';

export const HOST = 'echo-demo.telnyxcompute.com';

/** An undici agent that connects to 127.0.0.1:<port> whatever the URL's host, from `localAddress`. */
export function agentFor(port: number, options: { localAddress?: string; servername?: string; allowH2?: boolean } = {}): Agent {
  return new Agent({
    allowH2: options.allowH2 ?? false,
    ...(options.localAddress ? { localAddress: options.localAddress } : {}),
    connect: {
      host: '127.0.0.1',
      port,
      rejectUnauthorized: false,
      ...(options.servername ? { servername: options.servername } : {}),
      // Route every name to the router under test.
      lookup: (_host: string, opts: { all?: boolean }, cb: (err: Error | null, address: unknown, family?: number) => void) =>
        opts.all ? cb(null, [{ address: '127.0.0.1', family: 4 }]) : cb(null, '127.0.0.1', 4),
    } as never,
  });
}

export interface SimpleResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export async function get(
  agent: Agent,
  port: number,
  path: string,
  options: { host?: string; method?: string; headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<SimpleResponse> {
  const host = options.host ?? HOST;
  const res = await request(`https://${host}:${port}${path}`, {
    dispatcher: agent,
    method: (options.method ?? 'GET') as 'GET',
    headers: options.headers ?? {},
    body: options.body ?? null,
  });
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
}

/** One HTTP/2 request over a fresh session. */
export async function getH2(port: number, path: string, host = HOST): Promise<{ headers: IncomingHttpHeaders; body: string; alpn: string | false | undefined }> {
  const session = http2Connect(`https://${host}:${port}`, { rejectUnauthorized: false, host: '127.0.0.1', servername: host } as never);
  try {
    return await new Promise((resolve, reject) => {
      session.on('error', reject);
      const stream = session.request({ ':path': path, ':method': 'GET', ':authority': host });
      let headers: IncomingHttpHeaders = {};
      const chunks: Buffer[] = [];
      stream.on('response', (h) => (headers = h));
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => resolve({ headers, body: Buffer.concat(chunks).toString(), alpn: session.alpnProtocol }));
      stream.on('error', reject);
      stream.end();
    });
  } finally {
    session.close();
  }
}
