/**
 * The shared test Redis (TEST_REDIS_URL, else 127.0.0.1:6379), where most registry tests keep
 * their keys under a private prefix. CI starts one on 6379 (.ci/run); a developer's machine may
 * have redis-server installed but not running (a container without systemd, macOS after `brew
 * install redis`), and those tests then failed with ECONNREFUSED instead of starting their own
 * instance. The global setup calls this: when nothing answers on 6379 and TEST_REDIS_URL is not
 * set, a private redis-server is started on a free port and TEST_REDIS_URL names it for the run.
 */
import { hasProgram } from './system-program.js';
import { probePort } from './port.js';
import { TestRedisServer } from './redis-server.js';

const DEFAULT_PORT = 6379;

/** Returns how to stop what it started (nothing when a Redis was already there or named). */
export async function ensureSharedRedis(): Promise<() => Promise<void>> {
  if (process.env.TEST_REDIS_URL !== undefined) return async () => undefined;
  if ((await probePort(DEFAULT_PORT)) === 'open' || !hasProgram('redis-server')) return async () => undefined;
  const server = await TestRedisServer.start();
  process.env.TEST_REDIS_URL = server.url;
  console.log(`global setup: nothing answers on 127.0.0.1:${DEFAULT_PORT}; started redis-server on ${server.url} for this run`);
  return async () => {
    await server.stop();
    delete process.env.TEST_REDIS_URL;
  };
}
