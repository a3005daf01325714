import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { describeError } from '../../src/core/errors.js';
import { freePort, onFreshPorts, portsOutsideEphemeral, workerSlice } from '../../src/sim/free-port.js';

describe('freePort', () => {
  it('gives a port below the ephemeral range (never an outgoing connection’s source port) that can be listened on', async () => {
    const ephemeralStart = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    const ports = await Promise.all(Array.from({ length: 20 }, () => freePort()));
    for (const port of ports) expect(port).toBeLessThan(ephemeralStart);
    const server = createServer().listen(ports[0], '127.0.0.1');
    await once(server, 'listening');
    server.close();
  });

  it('never hands out a port twice while it may not be bound yet (a harness choosing a router\'s three ports before starting it)', async () => {
    // 400 draws from some 22,000 candidates: without the memory of recent ones, a repeat is ~97 % likely.
    const ports: number[] = [];
    for (let i = 0; i < 400; i++) ports.push(await freePort());
    expect(new Set(ports).size).toBe(ports.length);
  });
});

describe('workerSlice', () => {
  const span = { low: 10_000, high: 32_768 };

  it('gives each concurrent test worker a part of the span of its own, so that two never choose one port', () => {
    const slices = ['1', '2', '3', '4', '5', '6', '7', '8'].map((id) => workerSlice(span, id));
    for (const [i, slice] of slices.entries()) {
      expect(slice.low).toBeGreaterThanOrEqual(span.low);
      expect(slice.high).toBeLessThanOrEqual(span.high);
      expect(slice.high - slice.low).toBe(2_846);
      if (i > 0) expect(slice.low).toBeGreaterThanOrEqual(slices[i - 1]!.high);
    }
    expect(workerSlice(span, '9')).toEqual(slices[0]);
  });

  it('leaves the span whole outside a test worker', () => {
    for (const id of [undefined, '', 'abc', '0', '-1']) expect(workerSlice(span, id)).toEqual(span);
  });

  it("is where this worker's freePort chooses", async () => {
    const slice = workerSlice(portsOutsideEphemeral(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')), process.env.VITEST_POOL_ID);
    expect(process.env.VITEST_POOL_ID).toBeDefined();
    for (let i = 0; i < 20; i++) {
      const port = await freePort();
      expect(port).toBeGreaterThanOrEqual(slice.low);
      expect(port).toBeLessThan(slice.high);
    }
  });
});

describe('portsOutsideEphemeral', () => {
  it.each([
    ['the default range', '32768\t60999\n', { low: 10_000, high: 32_768 }],
    // A common tuning: below it there was only 10000-32767, inside the range.
    ['a range from 1024 up to 60999', '1024 60999', { low: 61_000, high: 65_536 }],
    ['a range starting just above the lowest', '10500 60999', { low: 61_000, high: 65_536 }],
    ['a range over every port', '1024 65535', { low: 10_000, high: 65_536 }],
    ['text that is no range', 'garbage', { low: 10_000, high: 32_768 }],
    ['a range upside down', '60999 32768', { low: 10_000, high: 32_768 }],
  ])('%s', (_name, text, span) => expect(portsOutsideEphemeral(text)).toEqual(span));
});

describe('onFreshPorts', () => {
  const taken = (port: number) => Object.assign(new Error(`listen EADDRINUSE: address already in use 127.0.0.1:${port}`), { code: 'EADDRINUSE', syscall: 'listen', address: '127.0.0.1', port });

  it('starts again on new ports when a router lost its port, as the router words it (no errno in its message)', async () => {
    // The text a router prints and exits with when its port is taken, from the error catalogue itself.
    const routerSays = `router exited (2) during start:\nedge-router router: ${describeError(taken(20248)).message}: free it, or choose other ports`;
    const attempts: number[] = [];
    const port = await onFreshPorts(async (attempt) => {
      attempts.push(attempt);
      if (attempt === 1) throw new Error(routerSays);
      return 20249;
    });
    expect(port).toBe(20249);
    expect(attempts).toEqual([1, 2]);
  });

  it("starts again when Node's own EADDRINUSE comes back, and gives up after the last attempt", async () => {
    let calls = 0;
    await expect(
      onFreshPorts(async () => {
        calls++;
        throw taken(20250);
      }, 3),
    ).rejects.toThrow(/EADDRINUSE/);
    expect(calls).toBe(3);
  });

  it('does not retry any other failure', async () => {
    let calls = 0;
    await expect(
      onFreshPorts(async () => {
        calls++;
        throw new Error('router exited (2) during start: regions.json: regions.0.lat: expected a number');
      }),
    ).rejects.toThrow(/regions\.json/);
    expect(calls).toBe(1);
  });
});
