import { afterEach, describe, expect, it, vi } from 'vitest';
import { LineBatch } from '../../src/observability/line-batch.js';

function output() {
  const chunks: string[] = [];
  return { chunks, write: (chunk: Buffer) => chunks.push(chunk.toString('utf8')) };
}

describe('LineBatch', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('hands lines on in one chunk once the batch is full, in order', () => {
    const out = output();
    const batch = new LineBatch(out, { batchBytes: 10, flushEveryMs: 0 });
    batch.write('abcd\n');
    expect(out.chunks).toEqual([]);
    batch.write('efgh\n');
    expect(out.chunks).toEqual(['abcd\nefgh\n']);
    batch.write('ij\n');
    expect(out.chunks).toEqual(['abcd\nefgh\n']);
  });

  it('hands on a partial batch on flush and on its timer, and nothing when empty', () => {
    vi.useFakeTimers();
    const out = output();
    const batch = new LineBatch(out, { batchBytes: 8_192, flushEveryMs: 200 });
    batch.write('one\n');
    vi.advanceTimersByTime(199);
    expect(out.chunks).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(out.chunks).toEqual(['one\n']);
    vi.advanceTimersByTime(1_000);
    expect(out.chunks).toEqual(['one\n']);
    batch.write('two\n');
    batch.write('three\n');
    batch.flush();
    expect(out.chunks).toEqual(['one\n', 'two\nthree\n']);
    batch.write('four\n');
    batch.close();
    expect(out.chunks).toEqual(['one\n', 'two\nthree\n', 'four\n']);
    batch.write('five\n');
    vi.advanceTimersByTime(1_000);
    expect(out.chunks).toHaveLength(3); // closed: no timer any more
  });

  it('gives up what it holds to take(), once, and hands nothing on afterwards', () => {
    const out = output();
    const batch = new LineBatch(out, { batchBytes: 1_000, flushEveryMs: 0 });
    expect(batch.take()).toBeNull();
    batch.write('a\n');
    batch.write('b\n');
    expect(batch.take()?.toString()).toBe('a\nb\n');
    expect(batch.take()).toBeNull();
    batch.flush();
    expect(out.chunks).toEqual([]);
  });

  it('counts bytes, not characters, and hands on UTF-8', () => {
    const out = output();
    const batch = new LineBatch(out, { batchBytes: 10, flushEveryMs: 0 });
    batch.write('é😀\n'); // 2 + 4 + 1 bytes in 4 units
    expect(out.chunks).toEqual([]);
    batch.write('ü\n'); // 10 bytes: full
    expect(out.chunks).toEqual(['é😀\nü\n']);
  });

  it('hands on, in order, a line longer than any batch holds, and keeps no bytes of a batch once handed on', () => {
    const chunks: Buffer[] = [];
    const batch = new LineBatch({ write: (chunk: Buffer) => chunks.push(chunk) }, { batchBytes: 100, flushEveryMs: 0 });
    const long = `${'x'.repeat(20_000)}\n`;
    batch.write('a\n');
    batch.write(long);
    batch.write('b\n');
    batch.write('c'.repeat(120) + '\n'); // fills the batch: handed on whole
    batch.write('d\n');
    batch.flush();
    expect(chunks.map((c) => c.toString())).toEqual(['a\n', long, `b\n${'c'.repeat(120)}\n`, 'd\n']);
    // Each chunk is the output's to keep: later lines never write over one handed on.
    batch.write('e\n');
    batch.write('f'.repeat(200) + '\n');
    expect(chunks.map((c) => c.toString())).toEqual(['a\n', long, `b\n${'c'.repeat(120)}\n`, 'd\n', `e\n${'f'.repeat(200)}\n`]);
  });
});
