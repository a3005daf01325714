/**
 * Hostile bytes at WebSocket openings: mutated HTTP/1.1 upgrades with frames sent before the 101
 * (the early bytes the router keeps), and mutated HTTP/2 extended CONNECT streams (RFC 8441) with
 * their DATA, end, reset or a request beside them. The region accepts every WebSocket and echoes.
 * The same promises as fuzzed-input.test.ts: a well-formed status line or a close, never a fault,
 * everyone else still served, and once the clients have gone no tunnel, upgrade or connection is
 * held for them.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/core/seeded-random.js';
import { agentFor, get } from '../support/clients.js';
import {
  between,
  caseAddress,
  encodeFrames,
  exchange,
  expectNoFault,
  inBatches,
  mutateHttp1,
  mutateHttp2,
  pick,
  statusOf,
  untilNothingHeld,
  webSocketFrame,
  webSocketUpgrade,
  WEBSOCKET_H2_SEQUENCES,
  type Random,
} from '../support/fuzz.js';
import { Cleanup, hostileSetup, openRawH2 } from '../support/hostile.js';
import { echoWebSockets } from '../support/websocket-origin.js';

const cleanup = new Cleanup();
afterEach(cleanup.run);

const SEED = Number(process.env.FUZZ_SEED ?? 0xf024);
const CASE_WAIT_MS = 800;
const PARALLEL = 24;

/** An upgrade's head, then none to three frames sent at once (before the 101 can have come). */
function upgradeWithEarlyFrames(random: Random, index: number): string {
  const frames = Array.from({ length: between(random, 0, 3) }, (_, n) => webSocketFrame(`early ${n}`).toString('latin1'));
  return webSocketUpgrade(`/ws/${index}`) + frames.join('');
}

describe('hostile clients: fuzzed WebSocket openings', () => {
  it('answers mutated upgrades and extended CONNECTs with a status, a tunnel or a close, never a fault, and holds no tunnel once they are gone', async () => {
    const { fra, nyc, router } = await hostileSetup(cleanup, []);
    echoWebSockets(fra);
    echoWebSockets(nyc);
    const random = seededRandom(SEED);
    const all = Array.from({ length: 240 }, (_, index) =>
      index % 2 === 0
        ? { index, kind: 'http1' as const, bytes: random() < 0.2 ? Buffer.from(upgradeWithEarlyFrames(random, index), 'latin1') : mutateHttp1(random, upgradeWithEarlyFrames(random, index)), halfClose: random() < 0.4 }
        : { index, kind: 'h2' as const, bytes: encodeFrames(random() < 0.2 ? pick(random, WEBSOCKET_H2_SEQUENCES)() : mutateHttp2(random, pick(random, WEBSOCKET_H2_SEQUENCES)())), halfClose: false },
    );
    const malformed: string[] = [];
    const statuses = new Set<number>();
    let connectFailures = 0;
    await inBatches(all, PARALLEL, async (c) => {
      const localAddress = caseAddress(c.index);
      if (c.kind === 'http1') {
        const reply = await exchange({ port: router.httpsPort, localAddress, tls: true, bytes: c.bytes, halfClose: c.halfClose, waitMs: CASE_WAIT_MS });
        const status = statusOf(reply, `case ${c.index} (seed ${SEED}) for ${JSON.stringify(c.bytes.subarray(0, 300).toString('latin1'))}`, malformed);
        if (status !== undefined) statuses.add(status);
        return;
      }
      const connection = await openRawH2(router.httpsPort, { reading: true, localAddress }).catch(() => undefined);
      if (connection === undefined) {
        connectFailures++;
        return;
      }
      await connection.send(c.bytes);
      await connection.closed(CASE_WAIT_MS);
      connection.socket.destroy();
    });
    const seed = `seed ${SEED}`;
    expect(malformed, seed).toEqual([]);
    expect(connectFailures, seed).toBe(0);
    // Tunnels were made over both protocols, and upgrades refused: the cases were neither all good nor all rejected.
    expect(statuses.has(101), seed).toBe(true);
    expect(statuses.has(400), seed).toBe(true);
    expect(router.access.some((a) => a.method === 'CONNECT' && a.status === 200), seed).toBe(true);
    expectNoFault(router, seed);

    const agent = agentFor(router.httpsPort, { localAddress: '127.79.255.1' });
    cleanup.add(() => agent.destroy());
    expect((await get(agent, router.httpsPort, '/after-fuzz')).status).toBe(200);
    const tunnel = await exchange({ port: router.httpsPort, localAddress: '127.79.255.2', tls: true, bytes: Buffer.concat([Buffer.from(webSocketUpgrade('/ws-after')), webSocketFrame('still')]), halfClose: false, waitMs: 2_000 });
    expect(tunnel.toString('latin1')).toMatch(/^HTTP\/1\.1 101 [^]*echo:/);
    await agent.close();

    await untilNothingHeld(router, [fra, nyc], seed);
  }, 120_000);
});
