/**
 * The exchange speaks undici's core handler interface, which undici 7 marks deprecated. These run
 * it against a real undici Pool and a real origin, so an undici release that stops calling it (or
 * changes how pausing and aborting work through it) fails here, not in production.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool, type Dispatcher } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UpstreamControl } from '../../src/proxy/upstream-control.js';

const BODY_BYTES = 4 * 1024 * 1024;

/** A core-interface handler that records what undici called, pausing after the first chunk when asked. */
class Recorder implements Dispatcher.DispatchHandler {
  readonly calls: string[] = [];
  control: UpstreamControl | undefined;
  rawHeaders: Buffer[] = [];
  status = 0;
  bytes = 0;
  error: Error | undefined;
  readonly done: Promise<void>;
  private finish!: () => void;

  constructor(private readonly pauseAfterFirstChunk: boolean) {
    this.done = new Promise((resolve) => (this.finish = resolve));
  }
  onConnect(abort: (reason?: Error) => void): void {
    this.calls.push('connect');
    this.control = new UpstreamControl(abort);
  }
  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    this.calls.push('headers');
    this.status = statusCode;
    this.rawHeaders = rawHeaders;
    this.control!.headArrived(resume);
    return !this.control!.paused;
  }
  onData(chunk: Buffer): boolean {
    if (this.bytes === 0) this.calls.push('data');
    this.bytes += chunk.length;
    if (this.pauseAfterFirstChunk && this.bytes === chunk.length) this.control!.pause();
    return !this.control!.paused;
  }
  onComplete(): void {
    this.calls.push('complete');
    this.finish();
  }
  onError(err: Error): void {
    this.calls.push('error');
    this.error = err;
    this.finish();
  }
}

describe('UpstreamControl with a real undici Pool', () => {
  let origin: Server;
  let pool: Pool;

  beforeAll(async () => {
    origin = createServer((req, res) => {
      if (req.url === '/slow') {
        res.writeHead(200, { 'Content-Type': 'text/plain' });
        res.write('first');
        return; // never ends: the test aborts it
      }
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'X-Origin': 'yes' });
      res.end(Buffer.alloc(BODY_BYTES, 0x61));
    });
    await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
    pool = new Pool(`http://127.0.0.1:${(origin.address() as AddressInfo).port}`, { connections: 2 });
  });

  afterAll(async () => {
    await pool.destroy();
    origin.closeAllConnections();
    await new Promise((resolve) => origin.close(resolve));
  });

  it('is called through the core interface: raw head as Buffers in the origin case, then the body, then the end', async () => {
    const handler = new Recorder(false);
    pool.dispatch({ path: '/', method: 'GET' }, handler);
    await handler.done;
    expect(handler.calls).toEqual(['connect', 'headers', 'data', 'complete']);
    expect(handler.status).toBe(200);
    expect(handler.rawHeaders.every((h) => Buffer.isBuffer(h))).toBe(true);
    expect(handler.rawHeaders.map((h) => h.toString('latin1'))).toContain('X-Origin');
    expect(handler.bytes).toBe(BODY_BYTES);
  });

  it('holds the body while paused and delivers the rest once resumed', async () => {
    const handler = new Recorder(true);
    pool.dispatch({ path: '/', method: 'GET' }, handler);
    await expect.poll(() => handler.bytes).toBeGreaterThan(0);
    const held = handler.bytes;
    await sleep(150);
    expect(handler.bytes).toBe(held); // nothing more while paused
    expect(held).toBeLessThan(BODY_BYTES);
    handler.control!.resume();
    await handler.done;
    expect(handler.bytes).toBe(BODY_BYTES);
    expect(handler.calls.at(-1)).toBe('complete');
  });

  it('aborts once, with the reason given, which undici hands back in onError', async () => {
    const handler = new Recorder(false);
    pool.dispatch({ path: '/slow', method: 'GET' }, handler);
    await expect.poll(() => handler.bytes).toBeGreaterThan(0);
    const reason = new Error('cut by the test');
    handler.control!.abort(reason);
    handler.control!.abort(new Error('a second abort is ignored'));
    await handler.done;
    expect(handler.error).toBe(reason);
    expect(handler.calls.filter((c) => c === 'error')).toHaveLength(1);
  });
});
