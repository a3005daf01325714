import { request } from 'undici';
import { afterEach, it } from 'vitest';
import { ADMIN_TOKEN, Cleanup, H2_FLAG, H2_FRAME, h2Frame, hpackGet, hostileSetup, openRawH2 } from '../support/hostile.js';

const cleanup = new Cleanup();
afterEach(cleanup.run);
const open = async (adminPort: number) => {
  const m = await (await request(`http://127.0.0.1:${adminPort}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).body.text();
  return /^edge_router_open_connections (\d+)/m.exec(m)?.[1];
};
it('debug', async () => {
  const { router } = await hostileSetup(cleanup, []);
  const cases: Record<string, Buffer> = {
    validGet: h2Frame(H2_FRAME.HEADERS, H2_FLAG.END_STREAM | H2_FLAG.END_HEADERS, 1, hpackGet('/x')),
    nothing: Buffer.alloc(0),
    pingOnStream: h2Frame(H2_FRAME.PING, 0, 1, Buffer.alloc(8)),
    badHpack: h2Frame(H2_FRAME.HEADERS, H2_FLAG.END_STREAM | H2_FLAG.END_HEADERS, 1, Buffer.from([0xff, 0xff, 0xff, 0x0f])),
    evenStream: h2Frame(H2_FRAME.HEADERS, H2_FLAG.END_STREAM | H2_FLAG.END_HEADERS, 2, hpackGet('/x')),
    longClaim: Buffer.from([0xff, 0xff, 0xff, 0x00, 0x00, 0, 0, 0, 1, 1, 2, 3]),
    unknownType: h2Frame(0x20, 0, 1, Buffer.alloc(3)),
    dataStream0: h2Frame(H2_FRAME.DATA, 0, 0, Buffer.alloc(3)),
  };
  for (const [name, bytes] of Object.entries(cases)) {
    const c = await openRawH2(router.httpsPort, { reading: true, localAddress: '127.80.0.' + (Object.keys(cases).indexOf(name) + 1) });
    if (bytes.length) await c.send(bytes);
    const closed = await c.closed(500);
    c.socket.destroy();
    await new Promise((r) => setTimeout(r, 2300));
    console.log(name, 'closedByRouter', closed, 'frames', c.frames.map((f) => f.type).join(','), 'open now', await open(router.adminPort));
  }
}, 60_000);
