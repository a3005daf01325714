import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { generateSelfSignedCertificate } from '../../src/ingress/certificates/dev-certificate.js';
import { CLIENT_METROS } from '../../src/sim/client-metros.js';
import { generateLoad } from '../../src/sim/load-generator.js';

/**
 * The generator against a real HTTPS server that answers from region "a" until `switchAfter`
 * requests have arrived, then from "b": the run's extension waits for "b", and only so long.
 */
describe('generateLoad', () => {
  let server: Server;
  let port: number;
  let served = 0;
  let switchAfter = Infinity;

  beforeAll(async () => {
    const pem = await generateSelfSignedCertificate({ names: ['*.telnyxcompute.com'] });
    server = createServer({ cert: pem.cert, key: pem.key }, (req, res) => {
      if (req.url === '/trickle') {
        // An answer that never ends but never idles either: a byte every 100 ms (a stream, an SSE feed).
        res.writeHead(200, { 'content-type': 'text/plain' });
        const drip = setInterval(() => res.write('.'), 100);
        res.on('close', () => clearInterval(drip));
        return;
      }
      served++;
      res.writeHead(200, { 'x-edge-region': served > switchAfter ? 'b' : 'a', 'x-edge-route': 'nearest' }).end('ok\n');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const london = CLIENT_METROS.filter((m) => m.id === 'london');
  const run = (durationS: number, extend?: { maxS: number; done: (samples: readonly { region: string | null }[]) => boolean }) =>
    generateLoad({ port, host: 'echo-demo.telnyxcompute.com', path: '/', metros: london, phases: [{ fromS: 0, rps: { london: 20 } }], durationS, ...(extend === undefined ? {} : { extend }) });

  it('goes on past its duration until what it waits for is seen, then stops', async () => {
    served = 0;
    switchAfter = 30; // at 20 req/s: about 1.5 s in, past the 1 s duration
    const samples = await run(1, { maxS: 10, done: (so) => so.some((s) => s.region === 'b') });
    const last = samples[samples.length - 1]!;
    expect(samples.some((s) => s.region === 'b')).toBe(true);
    expect(last.at).toBeGreaterThan(1_000);
    // Stopped once "b" answered, long before its 11 s limit (a tick or a few after the switch).
    expect(last.at).toBeLessThan(8_000);
    expect(samples.every((s) => s.error === null)).toBe(true);
  }, 20_000);

  it('shows what it waits for each sample once, as it comes in, not the whole run again each tick', async () => {
    served = 0;
    switchAfter = 30;
    const looks: number[] = [];
    const seen = new Set<object>();
    const samples = await run(1, {
      maxS: 10,
      done: (fresh) => {
        looks.push(fresh.length);
        for (const s of fresh) seen.add(s);
        return fresh.some((s) => s.region === 'b');
      },
    });
    expect(looks.length).toBeGreaterThan(1);
    // Every look's samples were new: none shown twice.
    expect(seen.size).toBe(looks.reduce((a, b) => a + b, 0));
    // And the run's first 20 requests' answers (a second at 20 req/s) were all shown.
    expect(seen.size).toBeGreaterThan(20);
    expect(samples.length).toBeGreaterThanOrEqual(seen.size);
  }, 20_000);

  it('gives up at duration + maxS when it never comes', async () => {
    served = 0;
    switchAfter = Infinity;
    const started = performance.now();
    const samples = await run(1, { maxS: 1, done: (so) => so.some((s) => s.region === 'b') });
    expect(samples.some((s) => s.region === 'b')).toBe(false);
    expect(samples[samples.length - 1]!.at).toBeGreaterThan(1_500);
    expect(performance.now() - started).toBeLessThan(10_000);
  }, 20_000);

  it('stops at its duration with nothing to wait for', async () => {
    served = 0;
    const samples = await run(1);
    expect(samples.length).toBeGreaterThan(5);
    expect(samples[samples.length - 1]!.at).toBeLessThan(1_000);
  }, 20_000);

  it('returns once its grace is over even when an answer is still coming (its bytes never pause long enough for its own timeouts)', async () => {
    const started = performance.now();
    const samples = await generateLoad({ port, host: 'echo-demo.telnyxcompute.com', path: '/trickle', metros: london, phases: [{ fromS: 0, rps: { london: 5 } }], durationS: 1, graceMs: 500 });
    expect(performance.now() - started).toBeLessThan(5_000);
    // Each request cut at the end is a sample, a failed one (not a whole 200), none left to land in
    // the array after it was returned.
    const count = samples.length;
    expect(count).toBeGreaterThan(0);
    expect(samples.every((s) => s.status === 0 && s.error !== null)).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(samples).toHaveLength(count);
  }, 20_000);

  it('offers the rate asked for over the time passed even when its ticks come late (a busy event loop)', async () => {
    // The loop blocked ~15 ms in every ~20: its 10 ms ticks come at about a third of their rate.
    const busy = setInterval(() => {
      const until = performance.now() + 15;
      while (performance.now() < until);
    }, 5);
    try {
      const samples = await generateLoad({ port, host: 'echo-demo.telnyxcompute.com', path: '/', metros: london, phases: [{ fromS: 0, rps: { london: 100 } }], durationS: 2 });
      // 200 owed; the last tick's share may be cut by the end. A share per tick offered about 70.
      expect(samples.length).toBeGreaterThanOrEqual(170);
      expect(samples.length).toBeLessThanOrEqual(205);
    } finally {
      clearInterval(busy);
    }
  }, 20_000);

  it('calls onSecond for every second, those a stall jumped over too (a scenario action set for one ran never)', async () => {
    const seconds: number[] = [];
    // One stall of 2.2 s from 0.5 s in: over the boundaries of seconds 1 and 2.
    const stall = setTimeout(() => {
      const until = performance.now() + 2_200;
      while (performance.now() < until);
    }, 500);
    try {
      await generateLoad({ port, host: 'echo-demo.telnyxcompute.com', path: '/', metros: london, phases: [{ fromS: 0, rps: { london: 5 } }], durationS: 4, onSecond: (s) => void seconds.push(s) });
    } finally {
      clearTimeout(stall);
    }
    expect(seconds).toEqual([0, 1, 2, 3]);
  }, 20_000);

  it('leaves no timer running once it returns (one held `npm run sim` past its exit backstop)', async () => {
    expect(await timersLeftBy(() => run(1))).toEqual([]);
  }, 20_000);
});

/**
 * The delays of the ref'd timers (those that hold a process) `work` started through the global
 * setTimeout and left pending, neither fired nor cleared. Told by watching the calls, not by
 * counting the process's timers: the test runner's own come and go meanwhile.
 */
async function timersLeftBy(work: () => Promise<unknown>): Promise<number[]> {
  const pending = new Map<NodeJS.Timeout, number>();
  const [realSet, realClear] = [globalThis.setTimeout, globalThis.clearTimeout];
  const set = vi.spyOn(globalThis, 'setTimeout').mockImplementation(((callback: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => {
    const timer = realSet((...a: unknown[]) => {
      pending.delete(timer);
      callback(...a);
    }, ms, ...args);
    pending.set(timer, ms ?? 0);
    return timer;
  }) as typeof setTimeout);
  const clear = vi.spyOn(globalThis, 'clearTimeout').mockImplementation((timer) => {
    if (timer !== undefined) pending.delete(timer as NodeJS.Timeout);
    realClear(timer);
  });
  try {
    await work();
  } finally {
    set.mockRestore();
    clear.mockRestore();
  }
  return [...pending].filter(([timer]) => timer.hasRef()).map(([, ms]) => ms);
}
