/** A stand-in regional orchestrator for data-plane tests: records what reached it, answers as told. */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { Socket } from 'node:net';

export interface SeenRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
  readonly rawHeaders: string[];
  body: Buffer;
  aborted: boolean;
  /** The exchange with the router is over (answered, or cut by either side). */
  done: boolean;
}

export type OriginHandler = (req: IncomingMessage, res: ServerResponse, seen: SeenRequest) => void;

/** Default: 200 with a JSON echo of method, url and body length. */
export const echo: OriginHandler = (req, res, seen) => {
  const body = JSON.stringify({ method: seen.method, url: seen.url, bytes: seen.body.length });
  res.writeHead(200, { 'content-type': 'application/json', 'x-origin': 'yes' });
  res.end(body);
};

/** An https origin's certificate and key; with `clientCa`, it requires a client certificate issued by it (mutual TLS). */
export interface OriginTls {
  readonly cert: string;
  readonly key: string;
  readonly clientCa?: string;
}

export class TestOrigin {
  readonly requests: SeenRequest[] = [];
  handler: OriginHandler = echo;
  /** When false, bodies are not buffered (large transfers). */
  recordBodies = true;
  /** When false, /healthz answers 503: the region's probes fail while its data plane still accepts. */
  healthy = true;

  /**
   * Every connection, cut by kill(): the server's own closeAllConnections() misses those it no
   * longer tracks, such as the ones the router half-closed before their answer ended (9 after
   * test/hostile, seen open with process._getActiveHandles()), and they outlived kill() for as long
   * as the worker did.
   */
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
    readonly name: string,
    /** Served over TLS (an https orchestrator), its certificate for localhost. */
    private readonly tls?: OriginTls,
  ) {
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
  }

  /** Requests the router still holds open here (an upstream connection each). */
  get openRequests(): number {
    return this.requests.filter((r) => !r.done).length;
  }

  get url(): string {
    return this.tls === undefined ? `http://127.0.0.1:${this.port}` : `https://localhost:${this.port}`;
  }

  /** `tls`: serve https with this certificate (it must name localhost: the url says https://localhost). */
  static async start(name = 'origin', port = 0, tls?: OriginTls): Promise<TestOrigin> {
    let origin: TestOrigin | undefined;
    const handle = (req: IncomingMessage, res: ServerResponse) => {
      const seen: SeenRequest = { method: req.method!, url: req.url!, headers: req.headers, rawHeaders: req.rawHeaders, body: Buffer.alloc(0), aborted: false, done: false };
      if (req.url === '/healthz') {
        res.statusCode = origin!.healthy ? 200 : 503;
        res.end(origin!.healthy ? 'ok' : 'unhealthy');
        return;
      }
      origin!.requests.push(seen);
      req.on('aborted', () => (seen.aborted = true));
      res.on('close', () => {
        if (!res.writableFinished) seen.aborted = true;
        seen.done = true;
      });
      if (!origin!.recordBodies) {
        origin!.handler(req, res, seen);
        return;
      }
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        seen.body = Buffer.concat(chunks);
        origin!.handler(req, res, seen);
      });
    };
    const tlsOptions = tls === undefined ? undefined : { cert: tls.cert, key: tls.key, ...(tls.clientCa === undefined ? {} : { ca: tls.clientCa, requestCert: true, rejectUnauthorized: true }) };
    const server = tlsOptions === undefined ? createServer(handle) : (createTlsServer(tlsOptions, handle) as unknown as Server);
    server.keepAliveTimeout = 5_000;
    server.listen(port, '127.0.0.1');
    await once(server, 'listening');
    origin = new TestOrigin(server, (server.address() as { port: number }).port, name, tls);
    return origin;
  }

  /** Stops listening and cuts every connection: the region is dead. */
  async kill(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    this.server.close();
    if (this.server.listening) await once(this.server, 'close');
  }

  /** Same port again (after kill). */
  static async revive(dead: TestOrigin): Promise<TestOrigin> {
    const origin = await TestOrigin.start(dead.name, dead.port, dead.tls);
    return origin;
  }
}
