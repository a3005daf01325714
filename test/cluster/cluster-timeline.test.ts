/** The timeline a failing cluster test shows (cluster-timeline.ts): the events in time order, with the test's marks. */
import { describe, expect, it } from 'vitest';
import { clusterTimeline, explainedBy } from './cluster-timeline.js';

const line = (fields: Record<string, unknown>) => JSON.stringify({ level: 30, hostname: 'h', ...fields });

describe('clusterTimeline', () => {
  it('lists the events of every process and the marks in time order, with the time since the first and the one before', () => {
    const output = [
      line({ time: 1_000, pid: 1, event: 'worker_forked', slot: 0, msg: 'started a router worker' }),
      line({ time: 9_500, pid: 1, event: 'worker_hung', silentMs: 6000, msg: 'x' }),
      line({ time: 3_250, pid: 2, event: 'listening', workerSlot: '0/2', msg: 'edge router ready' }),
      line({ time: 4_000, pid: 2, msg: 'an access line: no event' }),
      'edge-router: not a log line',
    ].join('\n');
    expect(clusterTimeline(output, [{ at: 3_500, what: 'saw 2 stuck' }]).split('\n')).toEqual([
      ' 0.000 s (+0.000 s)  pid 1 worker_forked slot=0',
      ' 2.250 s (+2.250 s)  pid 2 ready workerSlot=0/2',
      ' 2.500 s (+0.250 s)  test: saw 2 stuck',
      ' 8.500 s (+6.000 s)  pid 1 worker_hung silentMs=6000',
      'lines without a time:',
      '  edge-router: not a log line',
    ]);
  });

  it('puts the timeline in the message of a wait that failed, and passes a value through', async () => {
    const output = () => line({ time: 5, pid: 7, event: 'worker_died', signal: 'SIGKILL' });
    await expect(explainedBy(Promise.reject(new Error('replaced: not within 66000 ms')), output, [])).rejects.toThrow(/not within 66000 ms\n[^]*pid 7 worker_died signal=SIGKILL/);
    expect(await explainedBy(Promise.resolve(3), output, [])).toBe(3);
  });
});
