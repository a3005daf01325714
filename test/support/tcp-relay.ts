/**
 * A loopback TCP relay in front of a server, for faults no real server makes on cue: `silence`
 * stops relaying a connection in both directions without closing it — what a lost NAT or
 * conntrack entry does to a long-lived connection: neither end hears of it, nothing arrives.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { once } from 'node:events';

interface Relayed {
  readonly client: Socket;
  readonly upstream: Socket;
  /** Everything the client sent so far (small: the first commands), to tell connections apart. */
  sent: string;
}

export class TcpRelay {
  private readonly relayed = new Set<Relayed>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(targetPort: number): Promise<TcpRelay> {
    const server = createServer();
    const relay = new TcpRelay(server, 0);
    server.on('connection', (client) => relay.accept(client, targetPort));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return Object.assign(relay, { port: (server.address() as { port: number }).port });
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  private accept(client: Socket, targetPort: number): void {
    const upstream = connect(targetPort, '127.0.0.1');
    const entry: Relayed = { client, upstream, sent: '' };
    this.relayed.add(entry);
    client.on('data', (chunk: Buffer) => {
      if (entry.sent.length < 4_096) entry.sent += chunk.toString('latin1');
    });
    client.pipe(upstream);
    upstream.pipe(client);
    const close = () => {
      this.relayed.delete(entry);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', close).on('error', close);
    upstream.on('close', close).on('error', close);
  }

  /** Stops relaying (both ways, nothing closed) every connection whose client sent something matching `sent`; how many. */
  silence(sent: RegExp): number {
    let count = 0;
    for (const entry of this.relayed) {
      if (!sent.test(entry.sent)) continue;
      entry.client.unpipe(entry.upstream);
      entry.upstream.unpipe(entry.client);
      entry.client.pause();
      entry.upstream.pause();
      count++;
    }
    return count;
  }

  async close(): Promise<void> {
    for (const entry of this.relayed) {
      entry.client.destroy();
      entry.upstream.destroy();
    }
    this.server.close();
  }
}
