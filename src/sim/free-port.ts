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

export async function freePort(host = '127.0.0.1'): Promise<number> {
  const below = await (ephemeralStart ??= firstEphemeralPort());
  for (let tries = 0; tries < 200; tries++) {
    const port = await bindAndRelease(LOWEST + Math.floor(Math.random() * (below - LOWEST)), host);
    if (port !== null) return port;
  }
  // Every candidate was taken (a crowded machine): let the kernel choose, as before.
  const port = await bindAndRelease(0, host);
  if (port === null) throw new Error(`no free port on ${host}`);
  return port;
}
