import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { guardRequests } from '../../src/ingress/fault-guard.js';

let server: Server | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  server = undefined;
});

/** A real HTTP server whose handler is `handle` behind the guard; returns its URL and the faults seen. */
async function serve(handle: (req: IncomingMessage, res: ServerResponse) => void) {
  const faults: unknown[] = [];
  const faultIds: string[] = [];
  const answered: Array<[string, number]> = [];
  server = createServer(
    guardRequests(
      handle,
      (err, requestId) => {
        faults.push(err);
        faultIds.push(requestId);
      },
      () => ({ 'strict-transport-security': 'max-age=1' }),
      (_req, requestId, status) => answered.push([requestId, status]),
    ),
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, faults, faultIds, answered };
}

describe('guardRequests', () => {
  it('answers 500 internal_error to a request whose handler threw, reports the fault, and serves the next one', async () => {
    let calls = 0;
    const { url, faults, faultIds, answered } = await serve((_req, res) => {
      if (calls++ === 0) throw new TypeError('a bug');
      res.end('fine');
    });
    const first = await request(url, { headers: { 'x-request-id': 'req-42' } });
    const body = (await first.body.json()) as { error: { code: string; message: string; request_id?: string; requestId?: string } };
    expect(first.statusCode).toBe(500);
    expect(first.headers['strict-transport-security']).toBe('max-age=1');
    expect(first.headers['x-request-id']).toBe('req-42');
    expect(body.error).toMatchObject({ code: 'internal_error', message: 'internal error' });
    expect(JSON.stringify(body)).not.toContain('a bug'); // the stack is for the operator's log, not the client
    expect(faults).toHaveLength(1);
    expect((faults[0] as Error).message).toBe('a bug');
    // One id in the answer, the fault's report and the access line: a client's report finds both.
    expect(faultIds).toEqual(['req-42']);
    expect(answered).toEqual([['req-42', 500]]);
    const second = await request(url);
    expect([second.statusCode, await second.body.text()]).toEqual([200, 'fine']);
  });

  it('cuts the connection when the handler threw after the head went out', async () => {
    const { url, faults, answered } = await serve((_req, res) => {
      res.writeHead(200, { 'content-length': '10' });
      res.write('hello');
      throw new Error('mid-response');
    });
    // Whether the head reached the client before the cut or not, it never gets a whole answer.
    await expect(request(url).then((res) => res.body.text())).rejects.toThrow(/other side closed|terminated/);
    expect(faults).toHaveLength(1);
    expect(answered).toEqual([]); // the head was the handler's: so is the line
  });

  it('reports a throw of its own access line as a fault too, and the process serves on', async () => {
    const faults: unknown[] = [];
    let calls = 0;
    server = createServer(
      guardRequests(
        (_req: IncomingMessage, res: ServerResponse) => {
          if (calls++ === 0) throw new Error('a bug');
          res.end('fine');
        },
        (err) => faults.push(err),
        () => ({}),
        () => {
          throw new Error('the access line failed too');
        },
      ),
    );
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    expect((await request(url)).statusCode).toBe(500);
    expect(faults.map((f) => (f as Error).message)).toEqual(['a bug', 'the access line failed too']);
    const next = await request(url);
    expect([next.statusCode, await next.body.text()]).toEqual([200, 'fine']);
  });
});
