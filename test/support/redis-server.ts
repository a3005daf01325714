/** A private redis-server on a free loopback port, for tests that stop and restart Redis. */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { waitForPort } from './port.js';

import { freePort } from '../../src/sim/free-port.js';

export { freePort };


export class TestRedisServer {
  private child: ChildProcess | undefined;
  private constructor(
    readonly port: number,
    private readonly extraArgs: readonly string[],
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** `extraArgs`: more redis-server settings, such as `--requirepass <password>`. */
  static async start(extraArgs: readonly string[] = []): Promise<TestRedisServer> {
    const server = new TestRedisServer(await freePort(), extraArgs);
    await server.restart();
    return server;
  }

  /** Starts (again) on the same port, with no persistence. */
  async restart(): Promise<void> {
    if (this.child !== undefined) throw new Error('already running');
    this.child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...this.extraArgs], {
      stdio: 'ignore',
    });
    await waitForPort(this.port, true);
  }

  /** Kills the server (SIGKILL: an outage, not a graceful shutdown). */
  get running(): boolean {
    return this.child !== undefined;
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (child === undefined) return;
    this.child = undefined;
    child.kill('SIGKILL');
    if (child.exitCode === null) await once(child, 'exit');
    await waitForPort(this.port, false);
  }
}
