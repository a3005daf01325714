/**
 * A TCP port nobody listens on right now, for harnesses that start servers (the simulation, the
 * benchmarks, the tests).
 *
 * Chosen below the kernel's ephemeral range (net.ipv4.ip_local_port_range, 32768–60999 by
 * default), not by `listen(0)`: a port from that range can be taken as the *source* port of any
 * outgoing connection between the moment it is chosen and the moment the server binds it (or
 * while a server restarts on it), and the bind fails with EADDRINUSE. The test suite, with
 * thousands of loopback connections, hit that about once in three full runs. Below the range only
 * another listener can take it, and each candidate is checked by binding it.
 */
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';

const LOWEST = 10_000;
let ephemeralStart: Promise<number> | undefined;

async function firstEphemeralPort(): Promise<number> {
  const range = await readFile('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').catch(() => '32768 60999');
  const start = Number(range.trim().split(/\s+/)[0]);
  return Number.isInteger(start) && start > LOWEST + 1_000 ? start : 32_768;
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
  const below = await (ephemeralStart ??= firstEphemeralPort());
  for (let tries = 0; tries < 200; tries++) {
    const candidate = LOWEST + Math.floor(Math.random() * (below - LOWEST));
    if (handedOut.has(candidate)) continue;
    const port = await bindAndRelease(candidate, host);
    if (port !== null) return handOut(port);
  }
  // Every candidate was taken (a crowded machine): let the kernel choose, as before.
  const port = await bindAndRelease(0, host);
  if (port === null) throw new Error(`no free port on ${host}`);
  return port;
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
