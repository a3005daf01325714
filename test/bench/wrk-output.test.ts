import { describe, expect, it } from 'vitest';
import { parseH2load, parseWrk } from '../../bench/wrk-output.js';

const OUTPUT = `Running 5s test @ http://127.0.0.1:8080/
  2 threads and 100 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     4.21ms    1.02ms  41.70ms   90.12%
    Req/Sec    11.92k   801.33    13.10k    72.00%
  Latency Distribution
     50%  812.00us
     75%    4.50ms
     90%    5.11ms
     99%   12.80ms
  118622 requests in 5.00s, 17.31MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 7
Requests/sec:  23712.41
Transfer/sec:      3.46MB
`;

describe('parseWrk', () => {
  it('reads req/s, the request count, percentiles in their units, non-2xx answers and socket errors', () => {
    const result = parseWrk(OUTPUT);
    expect(result).toMatchObject({ rps: 23712.41, requests: 118622, non2xx: 7, socketErrors: 3, socketDetail: 'Socket errors: connect 0, read 2, write 0, timeout 1' });
    expect(result.p50Ms).toBeCloseTo(0.812, 6);
    expect(result.p99Ms).toBeCloseTo(12.8, 6);
    expect(result.cpuUs).toBeNaN();
  });

  it('refuses output without a summary, saying what it got', () => {
    expect(() => parseWrk('unable to connect to 127.0.0.1:8080 Connection refused\n')).toThrow(/cannot parse wrk output:\nunable to connect/);
  });
});

describe('parseH2load', () => {
  const output = (counts: string, codes: string) => `finished in 5.00s, 8123.40 req/s, 1.02MB/s
requests: 40617 total, 40627 started, 40617 done, ${counts}
status codes: ${codes}
traffic: 5.11MB (5358232) total, 1.20MB (1258330) headers (space savings 90.12%), 119.00KB (121851) data
                     min         max         mean         sd        +/- sd
time for request:      301us     41.20ms      6.01ms      2.10ms    71.30%
`;

  it('counts a failed answer once: as what it was (non-2xx), not also as a socket error', () => {
    const parsed = parseH2load(output('40607 succeeded, 10 failed, 0 errored, 0 timeout', '40607 2xx, 0 3xx, 0 4xx, 10 5xx'));
    expect(parsed).toMatchObject({ rps: 8123.4, requests: 40617, non2xx: 10, socketErrors: 0, p50Ms: 6.01 });
  });

  it('counts the requests that failed below HTTP (resets, lost connections, timeouts among them) once', () => {
    const parsed = parseH2load(output('40612 succeeded, 5 failed, 5 errored, 2 timeout', '40612 2xx, 0 3xx, 0 4xx, 0 5xx'));
    expect(parsed).toMatchObject({ non2xx: 0, socketErrors: 5, socketDetail: '5 requests errored below HTTP (reset or connection lost), 2 of them timed out' });
  });

  it('takes a redirect for a failure: the origin answers 200', () => {
    expect(parseH2load(output('40617 succeeded, 0 failed, 0 errored, 0 timeout', '40610 2xx, 7 3xx, 0 4xx, 0 5xx')).non2xx).toBe(7);
  });

  it('refuses output it cannot read', () => {
    expect(() => parseH2load('h2load: connection refused\n')).toThrow(/could not read h2load's output/);
  });
});
