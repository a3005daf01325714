/**
 * The ticket-key ring on a real TLS server: tickets sealed under the newest key, opened under any
 * key of the ring (an older one with a new ticket), refused under a key the ring no longer holds.
 */
import { randomBytes } from 'node:crypto';
import { connect, createServer, type Server, type TLSSocket } from 'node:tls';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { installTicketKeyRing, TicketKeyChoice, ticketKeyParts } from '../../../src/ingress/certificates/ticket-key-callback.js';
import { generateSelfSignedCertificate, type CertificatePem } from '../../../src/ingress/certificates/dev-certificate.js';
import { answer, startPublicListeners } from '../../support/public-listeners.js';

const key = () => randomBytes(48);

describe('TicketKeyChoice', () => {
  it('seals under the current key and opens under each, renewing only a previous-key ticket', () => {
    const [k1, k2, k3, k4] = [key(), key(), key(), key()];
    const choice = new TicketKeyChoice({ current: k2, next: k3, previous: k1 });
    expect(choice.sealing.name.equals(k2.subarray(0, 16))).toBe(true);
    expect(choice.sealing.aes.equals(k2.subarray(32))).toBe(true);
    expect(choice.opening(k2.subarray(0, 16))).toMatchObject({ verdict: 'open', key: { hmac: k2.subarray(16, 32) } });
    expect(choice.opening(k3.subarray(0, 16))).toMatchObject({ verdict: 'open', key: { aes: k3.subarray(32) } });
    expect(choice.opening(k1.subarray(0, 16))).toMatchObject({ verdict: 'open-and-renew', key: { aes: k1.subarray(32) } });
    expect(choice.opening(k4.subarray(0, 16))).toEqual({ verdict: 'unknown' });
    expect(new TicketKeyChoice({ current: k2 }).opening(k1.subarray(0, 16))).toEqual({ verdict: 'unknown' });
  });

  it('refuses keys of the wrong size', () => {
    expect(() => new TicketKeyChoice({ current: Buffer.alloc(32) })).toThrow(/48 bytes, not 32/);
    expect(() => ticketKeyParts(Buffer.alloc(47))).toThrow(/48 bytes, not 47/);
  });
});

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((resolve) => s.close(resolve));
});

let certificate: CertificatePem;
beforeAll(async () => {
  certificate = await generateSelfSignedCertificate({ names: ['localhost'] });
});

/** A TLS server holding `keys`: [current, previous] (or [current]); its port. */
async function serverWith([current, previous]: Buffer[]): Promise<{ port: number; ring: boolean }> {
  const server = createServer({ cert: certificate.cert, key: certificate.key }, (socket) => socket.end('hi'));
  servers.push(server);
  const ring = installTicketKeyRing(server, { current: current!, previous });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as { port: number }).port, ring };
}

/** One connection offering `session`: whether it resumed, and the newest ticket the server gave. */
async function visit(port: number, session?: Buffer, version: 'TLSv1.2' | 'TLSv1.3' = 'TLSv1.3'): Promise<{ reused: boolean; ticket: Buffer | undefined }> {
  const socket: TLSSocket = connect({ host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false, maxVersion: version, ...(session === undefined ? {} : { session }) });
  let ticket: Buffer | undefined;
  socket.on('session', (s: Buffer) => (ticket = s));
  await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
  const reused = socket.isSessionReused();
  for await (const _ of socket) void _; // read to the end: TLS 1.3 tickets come after the handshake
  return { reused, ticket };
}

describe('installTicketKeyRing on a TLS server', () => {
  it('opens tickets of the previous key (with a new ticket), refuses those of a key no longer held', async () => {
    const version = 'TLSv1.3';
    const [k1, k2, k3] = [key(), key(), key()];
    const before = await serverWith([k1]);
    expect(before.ring).toBe(true); // Node 20 has the hook: the fallback is not what is tested here
    const first = await visit(before.port, undefined, version);
    expect(first.reused).toBe(false);
    expect((await visit(before.port, first.ticket, version)).reused).toBe(true);

    // Rotated: k2 seals, k1 still opens.
    const rotated = await serverWith([k2, k1]);
    const resumed = await visit(rotated.port, first.ticket, version);
    expect(resumed.reused).toBe(true);
    // The renewed ticket is sealed under k2: a server holding only k2 opens it, one holding only k1 does not.
    expect((await visit((await serverWith([k2])).port, resumed.ticket, version)).reused).toBe(true);
    expect((await visit((await serverWith([k1])).port, resumed.ticket, version)).reused).toBe(false);

    // Rotated again: k1 is gone, its tickets cost a full handshake (and still work).
    const twice = await serverWith([k3, k2]);
    const refused = await visit(twice.port, first.ticket, version);
    expect(refused.reused).toBe(false);
    expect((await visit(twice.port, refused.ticket, version)).reused).toBe(true);
  });

  it('opens tickets of the staged next key: a router that rotated first is understood by one that has not', async () => {
    const [k1, k2] = [key(), key()];
    const rotatedFirst = await serverWith([k2, k1]);
    const ticket = (await visit(rotatedFirst.port)).ticket;
    const lagging = await serverWith([k1]);
    expect((await visit(lagging.port, ticket)).reused).toBe(false); // without the staged key
    const laggingWithNext = createServer({ cert: certificate.cert, key: certificate.key }, (socket) => socket.end('hi'));
    servers.push(laggingWithNext);
    installTicketKeyRing(laggingWithNext, { current: k1, next: k2 });
    await new Promise<void>((resolve) => laggingWithNext.listen(0, '127.0.0.1', resolve));
    expect((await visit((laggingWithNext.address() as { port: number }).port, ticket)).reused).toBe(true);
  });

  it('TLS 1.2: opens tickets of the previous key, refuses those of a key no longer held', async () => {
    // (A TLS 1.2 client of Node reports no ticket renewed on a resumed session, so only the verdicts are checked.)
    const [k1, k2, k3] = [key(), key(), key()];
    const first = await visit((await serverWith([k1])).port, undefined, 'TLSv1.2');
    expect(first.reused).toBe(false);
    expect((await visit((await serverWith([k2, k1])).port, first.ticket, 'TLSv1.2')).reused).toBe(true);
    expect((await visit((await serverWith([k3, k2])).port, first.ticket, 'TLSv1.2')).reused).toBe(false);
    expect((await visit((await serverWith([k1])).port, first.ticket, 'TLSv1.2')).reused).toBe(true);
  });

  it('keeps serving when keys change on a live server', async () => {
    const [k1, k2] = [key(), key()];
    const server = await serverWith([k1]);
    const first = await visit(server.port);
    installTicketKeyRing(servers[0]!, { current: k2, previous: k1 });
    expect((await visit(server.port, first.ticket)).reused).toBe(true);
    installTicketKeyRing(servers[0]!, { current: k2 });
    expect((await visit(server.port, first.ticket)).reused).toBe(false);
  });

  it('falls back to the newest key alone where Node has no ticket-key hook', () => {
    const [k1, k2] = [key(), key()];
    const installed: Buffer[] = [];
    const withoutHook = { setTicketKeys: (k: Buffer) => installed.push(k) } as unknown as Server;
    expect(installTicketKeyRing(withoutHook, { current: k2, previous: k1 })).toBe(false);
    expect(installed).toEqual([k2]);
  });

  it('never opens a ticket under the all-zero stand-in it answers unknown tickets with', async () => {
    // A ticket sealed under the all-zero key (name, HMAC and AES zero) must get a full handshake.
    const zero = createServer({ cert: certificate.cert, key: certificate.key, ticketKeys: Buffer.alloc(48) }, (socket) => socket.end('hi'));
    servers.push(zero);
    await new Promise<void>((resolve) => zero.listen(0, '127.0.0.1', resolve));
    const forged = await visit((zero.address() as { port: number }).port);
    expect((await visit((zero.address() as { port: number }).port, forged.ticket)).reused).toBe(true); // a real ticket
    expect((await visit((await serverWith([key(), key()])).port, forged.ticket)).reused).toBe(false);
  });
});

describe('PublicServers and the ticket-key ring', () => {
  it('keeps the ring through a reload of the default certificate (a new context comes with a random key)', async () => {
    const { servers, https: port } = await startPublicListeners((_req, res) => answer(res, 200, 'ok'), { tls: { cert: certificate.cert, key: certificate.key } });
    try {
      const [k1, k2] = [key(), key()];
      expect(servers.setTicketKeys({ current: k1 })).toBe(true);
      const first = await visitHttp(port);
      expect(servers.setTicketKeys({ current: k2, previous: k1 })).toBe(true);
      servers.updateDefaultCredentials(await generateSelfSignedCertificate({ names: ['localhost'] }));
      const after = await visitHttp(port, first.ticket);
      expect(after.reused).toBe(true);
      expect(after.status).toBe('HTTP/1.1 200 OK');
    } finally {
      servers.forceClose();
    }
  });
});

/** An HTTP/1.1 request over a new TLS connection offering `session`. */
async function visitHttp(port: number, session?: Buffer): Promise<{ reused: boolean; ticket: Buffer | undefined; status: string }> {
  const socket: TLSSocket = connect({ host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false, ALPNProtocols: ['http/1.1'], ...(session === undefined ? {} : { session }) });
  let ticket: Buffer | undefined;
  socket.on('session', (s: Buffer) => (ticket = s));
  await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
  const reused = socket.isSessionReused();
  socket.write('GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
  let text = '';
  for await (const chunk of socket) text += String(chunk);
  return { reused, ticket, status: text.slice(0, text.indexOf('\r\n')) };
}
