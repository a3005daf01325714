/**
 * A loopback TCP relay in front of a server, for faults no real server makes on cue: `silence`
 * stops relaying a connection in both directions without closing it — what a lost NAT or
 * conntrack entry does to a long-lived connection: neither end hears of it, nothing arrives;
 * `delayFrom` makes a client's commands reach the server late (a slow or congested path), so a
 * race that loopback always wins can be lost on cue; `cut` closes a connection.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { once } from 'node:events';

interface Relayed {
  readonly client: Socket;
  readonly upstream: Socket;
  /** Everything the client sent so far (small: the first commands), to tell connections apart. */
  sent: string;
  /** Once set, every chunk from the client reaches the server this many ms after it arrived (in order). */
  delayMs?: number;
}

export class TcpRelay {
  private readonly relayed = new Set<Relayed>();
  private delay?: { readonly from: RegExp; readonly ms: number };

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
      const text = chunk.toString('latin1');
      if (entry.sent.length < 4_096) entry.sent += text;
      if (entry.delayMs === undefined && this.delay?.from.test(text)) entry.delayMs = this.delay.ms;
      // Timers of one duration fire in the order they were set: delayed chunks keep their order.
      if (entry.delayMs === undefined) upstream.write(chunk);
      else setTimeout(() => upstream.writable && upstream.write(chunk), entry.delayMs);
    });
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
      entry.client.removeAllListeners('data');
      entry.upstream.unpipe(entry.client);
      entry.client.pause();
      entry.upstream.pause();
      count++;
    }
    return count;
  }

  /**
   * From now on, a client chunk matching `from`, and every later chunk on its connection, reaches
   * the server `ms` late; answers are not delayed.
   */
  delayFrom(from: RegExp, ms: number): void {
    this.delay = { from, ms };
  }

  /** Closes every connection whose client sent something matching `sent` (both sides, at once); how many. */
  cut(sent: RegExp): number {
    let count = 0;
    for (const entry of [...this.relayed]) {
      if (!sent.test(entry.sent)) continue;
      entry.client.destroy();
      entry.upstream.destroy();
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
