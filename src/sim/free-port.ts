/**
 * A TCP port nobody listens on right now, for harnesses that start servers (the simulation, the
 * benchmarks, the tests).
 *
 * Chosen outside the kernel's ephemeral range (net.ipv4.ip_local_port_range, 32768–60999 by
 * default: below it, or above one that starts low), not by `listen(0)`: a port from that range can be taken as the *source* port of any
 * outgoing connection between the moment it is chosen and the moment the server binds it (or
 * while a server restarts on it), and the bind fails with EADDRINUSE. The test suite, with
 * thousands of loopback connections, hit that about once in three full runs. Below the range only
 * another listener can take it, and each candidate is checked by binding it.
 */
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';

const LOWEST = 10_000;
/** Fewer free ports than this outside the ephemeral range and it is not worth keeping out of it. */
const ROOM = 1_000;
let candidates: Promise<PortSpan> | undefined;

/** Ports from `low` up to, not including, `high`. */
export interface PortSpan {
  readonly low: number;
  readonly high: number;
}

/**
 * Where to choose from, given ip_local_port_range's text: below the range, or above it when the
 * range starts too low to leave room (`1024 65535` is a common tuning: the span below it was taken
 * as 10000–32767, all inside the range). Unreadable, the kernel's default range is assumed.
 */
export function portsOutsideEphemeral(rangeText: string): PortSpan {
  const [start, end] = rangeText.trim().split(/\s+/).map(Number);
  if (!Number.isInteger(start) || !Number.isInteger(end) || start! > end!) return { low: LOWEST, high: 32_768 };
  if (start! >= LOWEST + ROOM) return { low: LOWEST, high: start! };
  if (end! + 1 + ROOM <= 65_536) return { low: end! + 1, high: 65_536 };
  // No room on either side: anywhere above the well-known ports, the retries (onFreshPorts) covering a race.
  return { low: LOWEST, high: 65_536 };
}

/** How many parts the span is cut into for concurrent test workers (vitest runs 2; room for more). */
const WORKER_SLICES = 8;

/**
 * The part of `span` a test worker chooses from, by its vitest pool id (1, 2 … among the workers
 * running at once), or the whole span outside vitest. Each worker process remembers only its own
 * ports (handedOut), so two workers could choose the same one and the second's router failed to
 * bind it (seen in CI: "127.0.0.1:20127 is already in use"); in parts of their own they cannot.
 */
export function workerSlice(span: PortSpan, poolId: string | undefined): PortSpan {
  const id = Number(poolId);
  if (poolId === undefined || !Number.isInteger(id) || id < 1) return span;
  const width = Math.floor((span.high - span.low) / WORKER_SLICES);
  const low = span.low + ((id - 1) % WORKER_SLICES) * width;
  return { low, high: low + width };
}

/** Listens on `port` (0: the kernel picks), closes again; the port it had, or null when it was taken. */
async function bindAndRelease(port: number, host: string): Promise<number | null> {
  const server = createServer();
  server.on('error', () => undefined);
  const listening = once(server, 'listening').then(
    () => true,
    () => false,
  );
  const failed = once(server, 'error').then(() => false);
  server.listen(port, host);
  if (!(await Promise.race([listening, failed]))) return null;
  const bound = (server.address() as { port: number }).port;
  server.close();
  await once(server, 'close');
  return bound;
}

/**
 * Ports this process handed out lately. A harness often chooses several ports before it starts
 * anything on them (a router's HTTPS, HTTP and admin ports): each is free when checked, and
 * without this one could be handed out twice before either is bound.
 */
const handedOut = new Set<number>();
const HANDED_OUT_KEPT = 512;
function handOut(port: number): number {
  if (handedOut.size >= HANDED_OUT_KEPT) handedOut.delete(handedOut.values().next().value!);
  handedOut.add(port);
  return port;
}

export async function freePort(host = '127.0.0.1'): Promise<number> {
  const span = workerSlice(
    await (candidates ??= readFile('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').then(portsOutsideEphemeral, () => portsOutsideEphemeral(''))),
    process.env.VITEST_POOL_ID,
  );
  for (let tries = 0; tries < 200; tries++) {
    const candidate = span.low + Math.floor(Math.random() * (span.high - span.low));
    if (handedOut.has(candidate)) continue;
    const port = await bindAndRelease(candidate, host);
    if (port !== null) return handOut(port);
  }
  // Every candidate was taken (a crowded machine): let the kernel choose, as before.
  const port = await bindAndRelease(0, host);
  if (port === null) throw new Error(`no free port on ${host}`);
  return handOut(port);
}

/**
 * What a start says when a port chosen free was taken by someone else before it bound it: Node's
 * EADDRINUSE, or the router's own message for it (core/errors.ts), which names no errno: matching
 * only the code, the retry below never saw a router lose its port, and the suite failed instead.
 */
const PORT_TAKEN = /EADDRINUSE|is already in use/;

/**
 * Runs `start` again (up to `attempts` times in all) while it fails because a port was taken;
 * `start` learns which attempt it is, to choose new ports. Any other failure is thrown at once.
 */
export async function onFreshPorts<T>(start: (attempt: number) => Promise<T>, attempts = 3): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start(attempt);
    } catch (err) {
      if (attempt >= attempts || !PORT_TAKEN.test((err as Error).message)) throw err;
    }
  }
}
