/**
 * Hostile bytes: seeded mutations of valid HTTP/1.1 requests and HTTP/2 frame sequences, each on a
 * TLS connection of its own to a real router. Whatever arrives, the router answers with a
 * well-formed status line or closes; it never faults (a 500 and a `request_fault` line, the sign
 * of an exception of its own), it keeps serving everyone else, and once the clients are gone it
 * holds nothing for them: no request in flight to a region, no connection open. A quarter of the
 * HTTP/2 clients read nothing (some asking for answers big enough to back the router's writes up).
 *
 * Seeded: a failure names its case, and the same seed gives the same bytes again (FUZZ_SEED to try
 * others by hand). Bounded: a fixed number of cases, each given at most CASE_WAIT_MS.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/core/seeded-random.js';
import { agentFor, get, getH2 } from '../support/clients.js';
import { caseAddress, encodeFrames, exchange, expectNoFault, HTTP1_REQUESTS, HTTP2_SEQUENCES, inBatches, mutateHttp1, mutateHttp2, pick, statusOf, untilNothingHeld, type Frame, type Random } from '../support/fuzz.js';
import { Cleanup, H2_FLAG, H2_FRAME, hostileSetup, hpackGet, largeBody, openRawH2 } from '../support/hostile.js';
import { echo } from '../support/origin.js';

const cleanup = new Cleanup();
afterEach(cleanup.run);

const SEED = Number(process.env.FUZZ_SEED ?? 0xf022);
/** How long a case is given to be answered or closed: a head cut short waits for the rest. */
const CASE_WAIT_MS = 800;
/** Cases in flight at once (each from its own address, so no per-address limit decides). */
const PARALLEL = 24;

interface Case {
  readonly index: number;
  readonly kind: 'http1' | 'h2';
  readonly bytes: Buffer;
  readonly halfClose: boolean;
  /** HTTP/2: the client reads what the router sends (one that does not lets the router's writes back up). */
  readonly reading: boolean;
}

/** Two answers of BIG_ANSWER_BYTES asked for on one connection: to a client that reads nothing, the router's writes back up. */
const BIG_ANSWERS = (): Frame[] => [
  { type: H2_FRAME.HEADERS, flags: H2_FLAG.END_STREAM | H2_FLAG.END_HEADERS, streamId: 1, payload: hpackGet('/big/1') },
  { type: H2_FRAME.HEADERS, flags: H2_FLAG.END_STREAM | H2_FLAG.END_HEADERS, streamId: 3, payload: hpackGet('/big/3') },
];
const BIG_ANSWER_BYTES = 8 * 1024 * 1024;

function cases(random: Random, count: number): Case[] {
  return Array.from({ length: count }, (_, index) =>
    index % 2 === 0
      ? { index, kind: 'http1', bytes: mutateHttp1(random, pick(random, HTTP1_REQUESTS)), halfClose: random() < 0.5, reading: true }
      : h2Case(random, index),
  );
}

/** A quarter of the HTTP/2 clients read nothing, and may ask for big answers as well. */
function h2Case(random: Random, index: number): Case {
  const reading = random() >= 0.25;
  const sequence = reading ? pick(random, HTTP2_SEQUENCES) : pick(random, [...HTTP2_SEQUENCES, BIG_ANSWERS, BIG_ANSWERS]);
  return { index, kind: 'h2', bytes: encodeFrames(mutateHttp2(random, sequence())), halfClose: false, reading };
}

describe('hostile clients: fuzzed requests', () => {
  it('answers mutated HTTP/1.1 and HTTP/2 with a status or a close, never a fault, and holds nothing once they are gone', async () => {
    const { fra, nyc, router } = await hostileSetup(cleanup, []);
    const big = largeBody(BIG_ANSWER_BYTES);
    for (const origin of [fra, nyc]) origin.handler = (req, res, seen) => (req.url?.startsWith('/big/') ? big(req, res) : echo(req, res, seen));
    const random = seededRandom(SEED);
    const all = cases(random, 480);
    const malformed: string[] = [];
    let answered = 0;
    let h2Connected = 0;
    const connectFailures: string[] = [];
    await inBatches(all, PARALLEL, async (c) => {
      const localAddress = caseAddress(c.index);
      if (c.kind === 'http1') {
        const reply = await exchange({ port: router.httpsPort, localAddress, tls: true, bytes: c.bytes, halfClose: c.halfClose, waitMs: CASE_WAIT_MS });
        if (reply.length === 0) return;
        answered++;
        statusOf(reply, `case ${c.index} (seed ${SEED}) for ${JSON.stringify(c.bytes.subarray(0, 200).toString('latin1'))}`, malformed);
        return;
      }
      const connection = await openRawH2(router.httpsPort, { reading: c.reading, localAddress }).catch((e: Error) => e);
      if (connection instanceof Error) {
        connectFailures.push(`case ${c.index}: ${connection.message}`);
        return;
      }
      h2Connected++;
      await connection.send(c.bytes);
      await connection.closed(CASE_WAIT_MS);
      connection.socket.destroy();
    });
    expect(malformed).toEqual([]);
    // The cases reached the router: most HTTP/1.1 ones were answered, every HTTP/2 one connected.
    const seed = `seed ${SEED}`;
    expect(answered, seed).toBeGreaterThan(all.filter((c) => c.kind === 'http1').length / 2);
    expect(connectFailures, seed).toEqual([]);
    expect(h2Connected, seed).toBe(all.filter((c) => c.kind === 'h2').length);

    expectNoFault(router, seed);
    // Some were forwarded, some refused: the cases were neither all good nor all rejected at once.
    const statuses = new Set(router.access.map((a) => a.status));
    expect(statuses.has(200), seed).toBe(true);
    expect(statuses.has(400), seed).toBe(true);
    // Big answers were asked for by clients that read nothing, and cut when they left.
    expect(router.access.some((a) => a.path.startsWith('/big/') && a.bytesOut < BIG_ANSWER_BYTES), seed).toBe(true);

    // Everyone else is still served, on both protocols.
    const agent = agentFor(router.httpsPort, { localAddress: '127.79.255.1' });
    cleanup.add(() => agent.destroy());
    expect((await get(agent, router.httpsPort, '/after-fuzz')).status).toBe(200);
    expect((await getH2(router.httpsPort, '/after-fuzz-h2')).headers[':status']).toBe(200);
    await agent.close();

    // And nothing is held for the clients that left.
    await untilNothingHeld(router, [fra, nyc], seed);
  }, 120_000);
});
