/**
 * HTTP/2's control frames as weapons: floods that cost the attacker a few bytes each and the
 * server a reply, a table entry or a callback each (CVE-2019-9512/9515/9516/9518, the 2024
 * CONTINUATION flood, HPACK bombs). For each: the router cuts the attacking connection (or refuses
 * the stream) long before the flood's own bound, and a well-behaved client on its own connection
 * is served while it runs and after.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { get, getH2 } from '../support/clients.js';
import { Cleanup, connectionsRefusedAt, H2_FLAG, H2_FRAME, h2Frame, hostileSetup, hpackGet, hpackNewField, openRawH2, refusedAtConnect } from '../support/hostile.js';

const cleanup = new Cleanup();
afterEach(cleanup.run);

/** Frames are written in batches until the router closes the connection, or the bounds are reached. */
const MAX_BATCHES = 400;
/**
 * A bound on time too, as every load loop has; the batch count is what a verdict is judged by. At
 * 8 s a SETTINGS flood on a host at load 12 ran out of time before the router had judged it.
 */
const FLOOD_MS = 15_000;

/** The attacker's own loopback address: the penalty box must not catch the normal client (127.0.0.1) or the agent (London). */
const ATTACKER = '127.66.0.1';

type Setup = Awaited<ReturnType<typeof hostileSetup>>;

interface FloodOutcome {
  setup: Setup;
  closed: boolean;
  /** RST_STREAM and GOAWAY codes the attacker received (when it reads). */
  resets: Array<{ streamId: number; code: number }>;
  batchesSent: number;
  /** The slowest answer a normal client got while the flood ran (ms). */
  worstNormalMs: number;
  normalAnswered: number;
}

/**
 * Opens a raw connection, writes `batch(i)` for i = 0, 1, … and, beside it, has a normal client
 * send one request after another over its own HTTP/2 connection, timing each.
 */
async function flood(options: { reading: boolean; preamble?: Buffer; batch: (i: number) => Buffer }): Promise<FloodOutcome> {
  const setup = await hostileSetup(cleanup, []);
  const { router, agent } = setup;
  const attacker = await openRawH2(router.httpsPort, { reading: options.reading, localAddress: ATTACKER });
  cleanup.add(() => attacker.socket.destroy());
  if (options.preamble) await attacker.send(options.preamble);
  let running = true;
  let worstNormalMs = 0;
  let normalAnswered = 0;
  const normal = (async () => {
    for (let i = 0; running && i < 200; i++) {
      const started = performance.now();
      const answer = await getH2(router.httpsPort, `/normal/${i}`);
      expect(answer.headers[':status']).toBe(200);
      worstNormalMs = Math.max(worstNormalMs, performance.now() - started);
      normalAnswered++;
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  const deadline = Date.now() + FLOOD_MS;
  let batchesSent = 0;
  while (batchesSent < MAX_BATCHES && Date.now() < deadline) {
    if (!(await attacker.send(options.batch(batchesSent)))) break;
    batchesSent++;
    // Let the router's answers, and its decision to close, come in between batches.
    await new Promise((r) => setImmediate(r));
  }
  const closed = await attacker.closed(3_000);
  running = false;
  await normal;
  // And after it: both protocols still served.
  expect((await get(agent, router.httpsPort, '/after')).status).toBe(200);
  return { setup, closed, resets: attacker.resets(), batchesSent, worstNormalMs, normalAnswered };
}

/** The continuation bytes of an HPACK integer beyond its prefix (RFC 7541 §5.1). */
function hpackIntegerTail(rest: number): number[] {
  const bytes: number[] = [];
  while (rest >= 128) {
    bytes.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  bytes.push(rest);
  return bytes;
}

const refusedTotal = (setup: Setup, reason: string): Promise<number> => connectionsRefusedAt(setup.router.adminPort, reason);

const repeat = (frame: Buffer, times: number) => Buffer.concat(Array.from({ length: times }, () => frame));
const report = (what: string, o: FloodOutcome) =>
  console.log(`${what}: closed ${o.closed} after ${o.batchesSent} batches; normal client ${o.normalAnswered} answers, slowest ${o.worstNormalMs.toFixed(1)} ms`);

/** Closed within a few batches, counted and logged as a frame flood of `kind`, its address refused for the penalty time. */
async function expectJudgedAFlood(outcome: FloodOutcome, kind: string, maxBatches: number): Promise<void> {
  expect(outcome.closed, `still open after ${outcome.batchesSent} batches`).toBe(true);
  expect(outcome.batchesSent).toBeLessThanOrEqual(maxBatches);
  expect(await refusedTotal(outcome.setup, 'frame_flood')).toBe(1);
  expect(await refusedAtConnect(outcome.setup.router.httpsPort, ATTACKER)).toBe(true);
  expect(await refusedTotal(outcome.setup, 'penalty')).toBeGreaterThanOrEqual(1);
  expect(outcome.normalAnswered).toBeGreaterThan(0);
  const logged = outcome.setup.router.logs.filter((l) => l.event === 'http2_flood');
  expect(logged).toEqual([expect.objectContaining({ client: ATTACKER, kind })]);
}

describe('hostile clients: HTTP/2 control-frame floods', () => {
  it('closes a connection that floods PINGs and never reads the acknowledgements, and refuses its address for a while', async () => {
    const ping = h2Frame(H2_FRAME.PING, 0, 0, Buffer.alloc(8, 7));
    const outcome = await flood({ reading: false, batch: () => repeat(ping, 1_000) });
    report('PING flood', outcome);
    // nghttp2 gives up once about 1,000 acknowledgements wait unread: a few batches.
    await expectJudgedAFlood(outcome, 'reply_flood', 50);
  }, 45_000);

  it('closes a connection that floods SETTINGS and never reads the acknowledgements', async () => {
    const settings = h2Frame(H2_FRAME.SETTINGS, 0, 0, Buffer.from([0, 0x3, 0, 0, 0, 100])); // MAX_CONCURRENT_STREAMS 100
    const outcome = await flood({ reading: false, batch: () => repeat(settings, 1_000) });
    report('SETTINGS flood', outcome);
    // Each acknowledgement is smaller than a PING's, so the kernel's buffers take more before the queue grows.
    await expectJudgedAFlood(outcome, 'reply_flood', 100);
  }, 45_000);

  it('closes a connection that sends one header block as endless CONTINUATION frames', async () => {
    // HEADERS without END_HEADERS opens a block the server must hold until it ends; then only CONTINUATIONs.
    const opening = h2Frame(H2_FRAME.HEADERS, H2_FLAG.END_STREAM, 1, hpackGet('/continuation'));
    const continuation = h2Frame(H2_FRAME.CONTINUATION, 0, 1, hpackNewField('x-c', 'x')); // one small field, again and again
    const outcome = await flood({ reading: true, preamble: opening, batch: () => repeat(continuation, 1_000) });
    report('CONTINUATION flood', outcome);
    // nghttp2 allows 8 CONTINUATION frames: the first batch is enough; the rest is how fast the close arrives.
    await expectJudgedAFlood(outcome, 'continuation_flood', 50);
    expect(outcome.setup.fra.requests.filter((r) => r.url === '/continuation')).toEqual([]);
  }, 45_000);

  it('closes a connection that sends empty DATA frames on an open upload', async () => {
    // An upload that never ends, its body a stream of empty frames: each costs a callback, none moves the request.
    const opening = h2Frame(H2_FRAME.HEADERS, H2_FLAG.END_HEADERS, 1, Buffer.concat([Buffer.from([0x83]), hpackGet('/empty-data').subarray(1)])); // :method POST
    const empty = h2Frame(H2_FRAME.DATA, 0, 1);
    const outcome = await flood({ reading: true, preamble: opening, batch: () => repeat(empty, 1_000) });
    report('empty DATA flood', outcome);
    // Node allows 100 invalid frames: the first batch is enough.
    await expectJudgedAFlood(outcome, 'invalid_frames', 50);
  }, 45_000);

  it('refuses a header block that the dynamic table inflates past the header limit (HPACK bomb), and sends none of it on', async () => {
    // One 4,000-byte field stored in the dynamic table (literal with incremental indexing), then
    // referenced by its index (62) 2,000 times: 6 KB on the wire, 8 MB of headers once decoded.
    const value = 'b'.repeat(4_000);
    const valueLength = Buffer.from([0x7f, ...hpackIntegerTail(value.length - 127)]);
    const store = Buffer.concat([Buffer.from([0x40, 3]), Buffer.from('x-b'), valueLength, Buffer.from(value)]);
    const bomb = (streamId: number) => h2Frame(H2_FRAME.HEADERS, H2_FLAG.END_HEADERS | H2_FLAG.END_STREAM, streamId, Buffer.concat([hpackGet(`/bomb/${streamId}`), store, Buffer.alloc(2_000, 0xbe)]));
    const outcome = await flood({ reading: true, batch: (i) => bomb(2 * i + 1) });
    report('HPACK bomb', outcome);
    // Every bomb refused on its own stream (Node answers ENHANCE_YOUR_CALM or INTERNAL_ERROR), none handled.
    const refused = new Set(outcome.resets.filter((r) => r.streamId !== 0).map((r) => r.streamId));
    expect(refused.size).toBe(outcome.batchesSent);
    expect(outcome.setup.fra.requests.filter((r) => r.url.startsWith('/bomb/'))).toEqual([]);
    expect(outcome.setup.router.access.filter((a) => a.path.startsWith('/bomb/'))).toEqual([]);
    expect(outcome.normalAnswered).toBeGreaterThan(0);
  }, 45_000);
});
