/**
 * A real redis-server made to refuse commands for a moment, as Redis does while it loads its
 * dataset (LOADING) or runs a long script (BUSY): its own server (DEBUG enabled, a directory of its
 * own for DEBUG RELOAD's save, a 100 ms busy-reply-threshold) and the two refusals, each begun on
 * demand so that a test can start one in the middle of whatever it watches.
 *
 * LOADING by DEBUG RELOAD, slowed by Redis's hidden `key-load-delay` setting and made to answer
 * meanwhile (`loading-process-events-interval-bytes`); BUSY by a script that loops until SCRIPT KILL.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { TestRedisServer } from './redis-server.js';
import { until } from './until.js';

/** A refusal of the moment, begun on `admin` (seen begun on `probe`); resolves with its end. */
export interface Refusal {
  readonly name: string;
  /** Redis's reply to a command meanwhile. */
  readonly reply: RegExp;
  /** Its first word, as Redis's reply names it. */
  readonly word: string;
  begin(admin: Redis, probe: Redis): Promise<() => Promise<void>>;
}

export const LOADING: Refusal = {
  name: 'LOADING (DEBUG RELOAD)',
  reply: /^LOADING /,
  word: 'LOADING',
  async begin(admin, probe) {
    // 60 keys of 4 KiB, 50 ms each to load (~3 s), events served after each: commands meanwhile are answered LOADING.
    await admin.call('DEBUG', 'POPULATE', '60', 'pad', '4096');
    await admin.config('SET', 'loading-process-events-interval-bytes', '1024');
    await admin.config('SET', 'key-load-delay', '50000');
    const reload = admin.call('DEBUG', 'RELOAD');
    await until('Redis loading', async () => /^loading:1\r?$/m.test(await probe.info('persistence')), 5_000);
    return async () => {
      await reload;
      await admin.config('SET', 'key-load-delay', '0');
    };
  },
};

export const BUSY: Refusal = {
  name: 'BUSY (a script past busy-reply-threshold)',
  reply: /^BUSY /,
  word: 'BUSY',
  async begin(admin, probe) {
    const script = admin.eval('while true do end', 0).catch(() => undefined); // killed
    await until('Redis busy', () => probe.ping().then(() => false, (err: Error) => /^BUSY /.test(err.message)), 5_000);
    return async () => {
      await probe.script('KILL');
      await script;
    };
  },
};

/** A redis-server that LOADING and BUSY can be begun on. */
export interface RefusingRedis {
  readonly server: TestRedisServer;
  /** Stops the server and removes its directory. */
  stop(): Promise<void>;
}

export async function startRefusingRedis(): Promise<RefusingRedis> {
  // DEBUG RELOAD saves the dataset first: into a directory of this server's own.
  const dir = await mkdtemp(join(tmpdir(), 'edge-router-refusal-'));
  let server: TestRedisServer;
  try {
    server = await TestRedisServer.start(['--enable-debug-command', 'yes', '--dir', dir, '--busy-reply-threshold', '100']);
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    server,
    async stop() {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
