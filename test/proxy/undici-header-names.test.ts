/**
 * The router hands undici the names of the headers it adds (undici-header-names.ts) through a table
 * internal to undici. These check that the table is where the module looks for it (an undici
 * upgrade that moves it fails here first), that the names the router really adds are the ones
 * registered, and that undici still checks every value and still delivers the headers.
 */
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';
import { describe, expect, it } from 'vitest';
import { ADDED_UPSTREAM_HEADER_NAMES, upstreamRequestHeaders } from '../../src/proxy/headers.js';
import { registerHeaderNames, undiciNameTable } from '../../src/proxy/undici-header-names.js';
import { forwardingContext } from '../support/forwarding.js';

describe("undici's table of header names", () => {
  it('is found in the undici the router uses', () => {
    expect(undiciNameTable()).toBeDefined();
  });

  it('lists exactly the names upstreamRequestHeaders adds', () => {
    const flat = upstreamRequestHeaders([], forwardingContext());
    const names = flat.filter((_, i) => i % 2 === 0);
    expect([...names].sort()).toEqual([...ADDED_UPSTREAM_HEADER_NAMES].sort());
  });

  it('gets each of them as itself, and nothing that is not a lower-case token', () => {
    expect(registerHeaderNames([...ADDED_UPSTREAM_HEADER_NAMES, 'X-Upper-Case', 'bad name', 'x-bad\r\n'])).toBe(true);
    const table = undiciNameTable()!;
    for (const name of ADDED_UPSTREAM_HEADER_NAMES) expect(table[name]).toBe(name);
    expect(table['X-Upper-Case']).toBeUndefined();
    expect(table['bad name']).toBeUndefined();
    expect(table['x-bad\r\n']).toBeUndefined();
    // Well-known names keep their own entries.
    expect(table['Content-Type']).toBe('content-type');
  });

  it('leaves undici checking the values, and the headers arriving', async () => {
    registerHeaderNames(ADDED_UPSTREAM_HEADER_NAMES);
    const seen: IncomingHttpHeaders[] = [];
    const origin = createServer((req, res) => {
      seen.push(req.headers);
      res.end('ok');
    });
    origin.listen(0, '127.0.0.1');
    await once(origin, 'listening');
    const pool = new Pool(`http://127.0.0.1:${(origin.address() as AddressInfo).port}`);
    try {
      const ok = await pool.request({ path: '/', method: 'GET', headers: ['x-real-ip', '192.0.2.1', 'x-edge-fn', 'fn'] });
      await ok.body.text();
      expect(ok.statusCode).toBe(200);
      expect(seen[0]).toMatchObject({ 'x-real-ip': '192.0.2.1', 'x-edge-fn': 'fn' });
      // A registered name with a value that would split the request is still refused.
      await expect(pool.request({ path: '/', method: 'GET', headers: ['x-real-ip', '192.0.2.1\r\nx-evil: 1'] })).rejects.toThrow(/invalid x-real-ip header/);
      expect(seen).toHaveLength(1);
    } finally {
      await pool.close();
      origin.close();
    }
  });
});
