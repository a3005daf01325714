/**
 * TLS session resumption across the workers of a router and across routers: every process seals
 * and opens session tickets with the key the registry holds (ticket-keys.ts). A client that got
 * a ticket from one of them skips the full handshake on any other. With sharing off, each process
 * has its own key and the same client pays the full handshake again (the control).
 */
import { connect, type TLSSocket } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { TestOrigin } from '../support/origin.js';
import { CLUSTER_START_TIMEOUT_MS, readyPidsOf, runEdgeRouter } from '../support/process.js';
import { freePort } from '../support/redis-server.js';
import { redisKeyspace } from '../support/redis-keyspace.js';
import { regionsFileFor, startTestRouter } from '../support/router.js';
import { REDIS_MISSING } from '../support/system-program.js';
import { until } from '../support/until.js';

const HOST = 'echo-demo.telnyxcompute.com';
const cleanup: Array<() => Promise<unknown>> = [];
const sharesKeys = (flags: readonly string[]) => !flags.join(' ').includes('--tls-ticket-rotation 0');
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

/** One HTTPS request on a new connection, offering `session`; whether the server resumed it, and the ticket it gave. */
async function visit(port: number, session?: Buffer): Promise<{ reused: boolean; session: Buffer; status: string }> {
  const socket: TLSSocket = connect({ host: '127.0.0.1', port, servername: HOST, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'], ...(session === undefined ? {} : { session }) });
  let ticket: Buffer | undefined;
  socket.on('session', (s: Buffer) => (ticket = s));
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', resolve);
    socket.once('error', reject);
  });
  const reused = socket.isSessionReused();
  socket.write(`GET / HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n`);
  let text = '';
  for await (const chunk of socket) text += String(chunk);
  // A resumed session may bring no new ticket: the one offered stays good.
  return { reused, session: ticket ?? session!, status: text.slice(0, text.indexOf('\r\n')) };
}

describe.skipIf(REDIS_MISSING)('TLS session resumption across routers sharing a registry', () => {
  // The shared test Redis, under a key prefix of this suite's own (a private redis-server on a
  // "free" port could race another suite's for the same port).
  const { url, prefix: redisKeyspacePrefix } = redisKeyspace('session-resumption');
  let run = 0;
  async function twoRouters(flags: string[]) {
    const prefix = `${redisKeyspacePrefix}${run++}:`;
    const origin = await TestOrigin.start('nyc');
    cleanup.push(() => origin.kill());
    const a = await startTestRouter({ nyc: origin.url }, ['--redis', url, '--redis-prefix', prefix, ...flags]);
    cleanup.push(() => a.close());
    const b = await startTestRouter({ nyc: origin.url }, ['--redis', url, '--redis-prefix', prefix, ...flags]);
    cleanup.push(() => b.close());
    // Each router waits at most a second for its first read of the registry before it serves
    // (under load, longer): until both have the shared key, tickets are each router's own.
    if (sharesKeys(flags)) await until('both routers on the shared key', () => [a, b].every((r) => r.logs.some((l) => l.event === 'tls_ticket_key')), 10_000);
    return { a, b };
  }

  it('resumes on router B a session router A began', async () => {
    const { a, b } = await twoRouters([]);
    const first = await visit(a.httpsPort);
    expect(first).toMatchObject({ reused: false, status: 'HTTP/1.1 200 OK' });
    const onB = await visit(b.httpsPort, first.session);
    expect(onB).toMatchObject({ reused: true, status: 'HTTP/1.1 200 OK' });
    expect((await visit(a.httpsPort, onB.session)).reused).toBe(true);
    // Both routers logged the same key by its fingerprint, never the key itself.
    const fingerprints = [a, b].map((r) => r.logs.find((l) => l.event === 'tls_ticket_key')?.fingerprint);
    expect(fingerprints[0]).toMatch(/^[0-9a-f]{12}$/);
    expect(fingerprints[1]).toBe(fingerprints[0]);
  });

  it('rotates the key on every router: the previous key still opens tickets, one two rotations old does not', async () => {
    // 5 s keys, each router looking every second: after a rotation both routers hold the new key
    // within about a second, which leaves about four before the next for the visits below.
    const { a, b } = await twoRouters(['--tls-ticket-rotation', '5000']);
    const latest = (r: typeof a) => r.logs.filter((l) => l.event === 'tls_ticket_key').at(-1)?.fingerprint as string | undefined;
    /** Waits until both routers hold one key other than `before` (a rotation has just spread); returns its fingerprint. */
    const bothOnNewKey = async (before: string | undefined): Promise<string> => {
      let key: string | undefined;
      await until(
        'both routers on a new key',
        () => {
          key = latest(a);
          return key !== undefined && key !== before && latest(b) === key;
        },
        15_000,
      );
      return key!;
    };
    // Begin right after a rotation, however long the routers took to start against the first key.
    const second = await bothOnNewKey(await bothOnNewKey(undefined));
    const old = await visit(a.httpsPort);
    expect((await visit(b.httpsPort, old.session)).reused).toBe(true);
    const third = await bothOnNewKey(second);
    // Sealed under the previous key, opened under it: no full handshake, and the client leaves
    // with a ticket sealed under the new key, good on either router.
    const renewed = await visit(b.httpsPort, old.session);
    expect(renewed.reused).toBe(true);
    expect((await visit(a.httpsPort, renewed.session)).reused).toBe(true);
    await bothOnNewKey(third);
    // The key `old` was sealed under is gone now: it costs one full handshake; `renewed`'s key still opens.
    expect((await visit(b.httpsPort, old.session)).reused).toBe(false);
    expect((await visit(a.httpsPort, renewed.session)).reused).toBe(true);
  }, 60_000);

  it('does not resume across routers when sharing is off (each keeps its own key)', async () => {
    const { a, b } = await twoRouters(['--tls-ticket-rotation', '0']);
    const first = await visit(a.httpsPort);
    expect((await visit(a.httpsPort, first.session)).reused).toBe(true); // the same router still resumes
    expect((await visit(b.httpsPort, first.session)).reused).toBe(false);
  });
});

describe('TLS session resumption across the workers of one router', () => {
  async function cluster(flags: string[]) {
    const origin = await TestOrigin.start('nyc');
    cleanup.push(() => origin.kill());
    const regions = await regionsFileFor({ nyc: origin.url });
    const [https, http, admin] = [await freePort(), await freePort(), await freePort()];
    const proc = runEdgeRouter([
      'router', '--workers', '2', '--dev-cert', '--regions', regions, '--bind', '127.0.0.1', '--https-port', String(https), '--http-port', String(http),
      '--admin-port', String(admin), '--unknown-functions', 'forward', '--probe-interval', '200', '--log-level', 'info', ...flags,
    ]);
    cleanup.push(() => proc.stop('SIGKILL'));
    // Bounds for a loaded machine, where a cluster takes 20 s to start (CLUSTER_START_TIMEOUT_MS);
    // each wait ends as soon as its condition holds.
    await until('both workers ready', () => readyPidsOf(proc).length === 2, CLUSTER_START_TIMEOUT_MS);
    await until('nyc probed up', async () => (await visit(https)).status === 'HTTP/1.1 200 OK', 30_000);
    if (sharesKeys(flags)) await until('both workers on the shared key', () => proc.output().split('\n').filter((l) => l.includes('"tls_ticket_key"')).length === 2, 30_000);
    return { port: https, proc };
  }

  /** Resumes `session` on eight new connections (the cluster primary deals them out to both workers in turn). */
  async function resumptions(port: number): Promise<boolean[]> {
    let { session } = await visit(port);
    const reused: boolean[] = [];
    for (let i = 0; i < 8; i++) {
      const next = await visit(port, session);
      reused.push(next.reused);
      session = next.session;
    }
    return reused;
  }

  it('resumes on either worker, both on the registry key', async () => {
    const { port, proc } = await cluster([]);
    expect(await resumptions(port)).toEqual(Array(8).fill(true));
    const fingerprints = proc
      .output()
      .split('\n')
      .filter((l) => l.includes('"tls_ticket_key"'))
      .map((l) => (JSON.parse(l) as { fingerprint: string }).fingerprint);
    expect(fingerprints).toHaveLength(2);
    expect(fingerprints[1]).toBe(fingerprints[0]);
    // (Node's cluster also hands its first worker's key to the others, so this holds without the
    // registry too; across routers, above, only the registry makes it hold.)
  }, CLUSTER_START_TIMEOUT_MS + 60_000);
});
