/**
 * Every HTTP/2 stream the router serves has several jobs for its 'aborted' and 'close' events
 * (the reset-flood guard's accounting, the stream pair's destroy of an aborted stream, the
 * exchange learning its client left), and each listener costs about 1,000 instructions a request
 * to register and emit (callgrind, issue #10). The router's jobs share one listener per event.
 * Counted over a real connection through the whole router, beside what Node itself listens with.
 */
import type { Http2Session, ServerHttp2Stream } from 'node:http2';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { PublicServers } from '../../src/ingress/public-servers.js';
import { getH2 } from '../support/clients.js';
import { TestOrigin } from '../support/origin.js';
import { startTestRouter, type TestRouter } from '../support/router.js';

interface Counts {
  aborted: number;
  close: number;
}
type TrackSession = (this: PublicServers, session: Http2Session, address: string) => void;
const countsOf = (stream: ServerHttp2Stream): Counts => ({ aborted: stream.listenerCount('aborted'), close: stream.listenerCount('close') });

describe("the router's listeners on a served HTTP/2 stream", () => {
  let origin: TestOrigin;
  let router: TestRouter;
  /** The router's HTTP/2 streams, each with its listeners as Node handed it over, before any of the router's code had it. */
  const streams: Array<{ stream: ServerHttp2Stream; before: Counts }> = [];
  /** The listeners of the last stream while its request was at the region. */
  let atRegion: Counts | undefined;

  beforeAll(async () => {
    origin = await TestOrigin.start('fra');
    origin.handler = (req, res) => {
      // The exchange has started (its upstream request is here): every listener it waits with is on.
      if (req.url === '/listeners') atRegion = countsOf(streams.at(-1)!.stream);
      res.end('ok');
    };
    // Each HTTP/2 session of the router, as it tracks it: after its 'session' listener prepended
    // the flood guard's 'stream' listener, so this one, prepended later, runs before any of the
    // router's code has the stream.
    const track = (PublicServers.prototype as unknown as { trackSession: TrackSession }).trackSession;
    vi.spyOn(PublicServers.prototype as unknown as { trackSession: TrackSession }, 'trackSession').mockImplementation(function (this: PublicServers, session, address) {
      session.prependListener('stream', (stream: ServerHttp2Stream) => streams.push({ stream, before: countsOf(stream) }));
      track.call(this, session, address);
    });
    router = await startTestRouter({ fra: origin.url, nyc: origin.url });
  });
  afterAll(async () => {
    vi.restoreAllMocks();
    await router?.close();
    await origin?.kill();
  });

  it("gives a stream one 'aborted' and one 'close' listener of the router's, whatever number of jobs they do", async () => {
    const answer = await getH2(router.httpsPort, '/listeners');
    expect([answer.headers[':status'], answer.body]).toEqual([200, 'ok']);
    expect(streams).toHaveLength(1);
    expect(atRegion).toBeDefined();
    const { before } = streams[0]!;
    expect({ aborted: atRegion!.aborted - before.aborted, close: atRegion!.close - before.close }).toEqual({ aborted: 1, close: 1 });
  });
});
