import { readFileSync, readlinkSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import { Agent, request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { relayLines, WholeLines } from '../../src/cluster/worker-stdout.js';
import { RELAYED_STDOUT_ENV } from '../../src/observability/logger.js';
import { TestOrigin } from '../support/origin.js';
import { CLUSTER_START_TIMEOUT_MS, readyPidsOf, runEdgeRouter } from '../support/process.js';
import { freePort } from '../support/redis-server.js';
import { regionsFileFor } from '../support/router.js';
import { until } from '../support/until.js';

const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

const text = (b: Buffer | null) => (b === null ? null : b.toString());

describe('WholeLines', () => {
  it('hands on the whole lines of each chunk and keeps a line split across reads until its end arrives', () => {
    const lines = new WholeLines();
    expect(text(lines.take(Buffer.from('{"a":1}\n{"b":')))).toBe('{"a":1}\n');
    expect(lines.take(Buffer.from('2,"c"'))).toBeNull();
    expect(text(lines.take(Buffer.from(':3}\n{"d":4}\n')))).toBe('{"b":2,"c":3}\n{"d":4}\n');
    expect(lines.end()).toBeNull();
  });

  it('keeps a copy of an unfinished line: the reader may reuse the chunk it was read into', () => {
    const lines = new WholeLines();
    const chunk = Buffer.from('one\ntw');
    expect(text(lines.take(chunk))).toBe('one\n');
    chunk.fill(0x3f);
    expect(text(lines.take(Buffer.from('o\n')))).toBe('two\n');
  });

  it('ends what a worker left unfinished (it died mid-line) with a line end of its own, so no other line is glued to it', () => {
    const lines = new WholeLines();
    lines.take(Buffer.from('{"cut'));
    expect(text(lines.end())).toBe('{"cut\n');
    expect(lines.end()).toBeNull();
  });

  it('holds at most about a megabyte of a line that never ends', () => {
    const lines = new WholeLines();
    const piece = Buffer.alloc(64 * 1024, 0x78);
    const handed: Buffer[] = [];
    for (let i = 0; i < 40; i++) {
      const out = lines.take(piece);
      if (out !== null) handed.push(out);
    }
    expect(handed.length).toBe(2);
    expect(handed.every((b) => b.length === 1024 * 1024 + 1 && b[b.length - 1] === 0x0a)).toBe(true);
    expect(lines.end()!.length).toBe(8 * 64 * 1024 + 1);
  });
});

describe('relayLines', () => {
  it('writes the whole lines of a stream as they complete and the rest at its end, then resolves', async () => {
    const stream = new PassThrough();
    const written: string[] = [];
    const done = relayLines(stream, (b) => written.push(b.toString()));
    stream.write('x\ny');
    stream.write('\nz');
    stream.end();
    await done;
    expect(written).toEqual(['x\n', 'y\n', 'z\n']);
  });

  it('resolves when the stream fails, having written what arrived', async () => {
    const stream = new PassThrough();
    const written: string[] = [];
    const done = relayLines(stream, (b) => written.push(b.toString()));
    stream.write('x\npart');
    await new Promise((resolve) => setImmediate(resolve));
    stream.destroy(new Error('EPIPE'));
    await done;
    expect(written).toEqual(['x\n', 'part\n']);
  });
});

describe('a cluster router\'s output', () => {
  it('reaches stdout through the primary: each worker writes to a pipe of its own, and every access line arrives whole, once, the last ones at the stop too', async () => {
    const origin = await TestOrigin.start('nyc');
    cleanup.push(() => origin.kill());
    const regions = await regionsFileFor({ nyc: origin.url });
    const [https, http, admin] = [await freePort(), await freePort(), await freePort()];
    const proc = runEdgeRouter([
      'router', '--workers', '2', '--dev-cert', '--regions', regions, '--bind', '127.0.0.1', '--unknown-functions', 'forward', '--log-level', 'info',
      '--https-port', String(https), '--http-port', String(http), '--admin-port', String(admin), '--plain-http', 'serve',
    ], { EDGE_ADMIN_TOKEN: 'worker-stdout-test-token-0123456789' });
    cleanup.push(() => proc.stop('SIGKILL'));
    await until('both workers ready', () => readyPidsOf(proc).length === 2, CLUSTER_START_TIMEOUT_MS);
    // The workers' stdout is not the primary's (the test's pipe): each has one the primary reads.
    const primaryOut = readlinkSync(`/proc/${proc.child.pid}/fd/1`);
    const workerOuts = readyPidsOf(proc).map((pid) => readlinkSync(`/proc/${pid}/fd/1`));
    expect(workerOuts.filter((out) => out === primaryOut)).toEqual([]);
    expect(new Set(workerOuts).size).toBe(2);
    // …and each knows it is the one writer of its own: its batches go out whole, not in PIPE_BUF pieces.
    for (const pid of readyPidsOf(proc)) expect(readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')).toContain(`${RELAYED_STDOUT_ENV}=1`);

    // Requests on many connections, so that both workers serve some; their access lines are
    // still in the workers' batches (written every 200 ms) when the stop comes.
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) {
      const each = new Agent({ connections: 1 });
      const answers = await Promise.all(
        Array.from({ length: 10 }, (_, j) =>
          request(`http://127.0.0.1:${http}/n/${i}/${j}`, { headers: { host: 'echo-demo.telnyxcompute.com' }, dispatcher: each }).then(async (res) => {
            await res.body.dump();
            expect(res.statusCode).toBe(200);
            return String(res.headers['x-request-id']);
          }),
        ),
      );
      ids.push(...answers);
      await each.close();
    }
    expect(await proc.stop('SIGTERM')).toBe(0);

    const stdout = proc.output().split('\n').filter((l) => l.startsWith('{'));
    const access = stdout.map((l) => JSON.parse(l) as { log?: string; requestId?: string; pid: number }).filter((l) => l.log === 'access');
    expect(access.map((l) => l.requestId).sort()).toEqual([...ids].sort());
    // Both workers' lines, each line once.
    expect(new Set(access.map((l) => l.pid)).size).toBe(2);
  }, 2 * CLUSTER_START_TIMEOUT_MS);
});
