import { afterEach, describe, expect, it, vi } from 'vitest';
import { LineBatch } from '../../src/observability/line-batch.js';

function output() {
  const chunks: string[] = [];
  return { chunks, write: (chunk: string) => chunks.push(chunk) };
}

describe('LineBatch', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('hands lines on in one chunk once the batch is full, in order', () => {
    const out = output();
    const batch = new LineBatch(out, { batchChars: 10, flushEveryMs: 0 });
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
    const batch = new LineBatch(out, { batchChars: 8_192, flushEveryMs: 200 });
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
    const batch = new LineBatch(out, { batchChars: 1_000, flushEveryMs: 0 });
    expect(batch.take()).toBeNull();
    batch.write('a\n');
    batch.write('b\n');
    expect(batch.take()).toBe('a\nb\n');
    expect(batch.take()).toBeNull();
    batch.flush();
    expect(out.chunks).toEqual([]);
  });
});

