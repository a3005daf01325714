import { EventEmitter } from 'node:events';
import type { ServerHttp2Stream } from 'node:http2';
import { describe, expect, it } from 'vitest';
import { destroyWhenAborted, whenAborted, whenClosed } from '../../src/ingress/http2-stream-hooks.js';

/** Enough of a stream for the hooks: its events, its reset code, and a destroy that records when it ran. */
function fakeStream(log: string[]): ServerHttp2Stream & EventEmitter {
  return Object.assign(new EventEmitter(), {
    rstCode: 8,
    destroy() {
      log.push('destroy');
    },
  }) as unknown as ServerHttp2Stream & EventEmitter;
}

describe('HTTP/2 stream hooks', () => {
  it("puts every job on one 'aborted' and one 'close' listener, run in the order asked, the destroy after the abort jobs", () => {
    const log: string[] = [];
    const stream = fakeStream(log);
    destroyWhenAborted(stream); // asked first, as a pair could: still after every abort job
    whenAborted(stream, (s) => log.push(`guard sees code ${s.rstCode}`));
    whenAborted(stream, () => log.push('second abort job'));
    whenClosed(stream, () => log.push('quota slot back'));
    whenClosed(stream, () => log.push('exchange told'));
    expect([stream.listenerCount('aborted'), stream.listenerCount('close')]).toEqual([1, 1]);
    stream.emit('aborted');
    stream.emit('close');
    expect(log).toEqual(['guard sees code 8', 'second abort job', 'destroy', 'quota slot back', 'exchange told']);
  });

  it('runs each job once, as a once listener would, and registers nothing for an event no one asked for', () => {
    const log: string[] = [];
    const stream = fakeStream(log);
    whenClosed(stream, () => log.push('closed'));
    expect(stream.listenerCount('aborted')).toBe(0);
    stream.emit('close');
    stream.emit('close');
    expect(log).toEqual(['closed']);

    const aborting = fakeStream(log);
    whenAborted(aborting, () => log.push('aborted'));
    destroyWhenAborted(aborting);
    expect(aborting.listenerCount('close')).toBe(0);
    aborting.emit('aborted');
    aborting.emit('aborted');
    expect(log).toEqual(['closed', 'aborted', 'destroy']);
  });

  it('leaves a stream that aborts undestroyed unless someone waits for its close', () => {
    const log: string[] = [];
    const stream = fakeStream(log);
    whenAborted(stream, () => log.push('counted'));
    stream.emit('aborted');
    expect(log).toEqual(['counted']);
  });
});
