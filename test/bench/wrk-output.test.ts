import { describe, expect, it } from 'vitest';
import { parseWrk } from '../../bench/wrk-output.js';

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
