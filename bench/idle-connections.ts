/**
 * The idle-connection client of `npm run bench`, a process of its own (pinned beside wrk):
 *
 *   idle <port> <host> <count> <first-source-octet>
 *     Opens `count` HTTP/2 connections, one GET each, and keeps them open and idle; prints
 *     {"open": n} once they are, then holds them until SIGTERM. At most 200 connections per
 *     source address (127.<octet>.<n>.1, …): the router limits connections and requests per peer
 *     address. Connections after the first resume its TLS session, so opening is quick.
 *
 * wrk and h2load cannot hold thousands of idle connections while something else is measured.
 */
import { connect as connectHttp2, type ClientHttp2Session } from 'node:http2';
import { connect as connectTcp } from 'node:net';
import { connect } from 'node:tls';

const [mode, portText, host, ...rest] = process.argv.slice(2);
const port = Number(portText);
if (mode !== 'idle' || !Number.isInteger(port) || host === undefined) {
  console.error('usage: idle-connections idle <port> <host> <count> <first-source-octet>');
  process.exit(2);
}

async function idle(count: number, firstOctet: number): Promise<void> {
  const sessions: ClientHttp2Session[] = [];
  let ticket: Buffer | undefined;
  let failed = 0;
  let firstError = '';
  const open = (i: number) =>
    new Promise<void>((resolve) => {
      // Round-robin over the addresses: a batch's requests are spread, not all from one address.
      const localAddress = `127.${firstOctet}.${i % Math.ceil(count / 200)}.1`;
      const tcp = connectTcp({ host: '127.0.0.1', port, localAddress });
      const socket = connect({ socket: tcp, servername: host, rejectUnauthorized: false, ALPNProtocols: ['h2'], ...(ticket === undefined ? {} : { session: ticket }) });
      socket.on('session', (s: Buffer) => (ticket ??= s));
      const session = connectHttp2(`https://${host}`, { createConnection: () => socket });
      const fail = (err: unknown) => {
        failed++;
        firstError ||= String(err);
        session.destroy();
        resolve();
      };
      session.once('error', fail);
      const req = session.request({ ':path': '/', ':authority': host });
      req.once('error', fail);
      req.on('response', (headers) => {
        if (headers[':status'] !== 200) {
          failed++;
          firstError ||= `status ${String(headers[':status'])}`;
        }
      });
      req.resume();
      req.once('end', () => {
        sessions.push(session);
        resolve();
      });
    });
  // A hundred handshakes at a time: fast, without a SYN flood.
  for (let i = 0; i < count; i += 100) await Promise.all(Array.from({ length: Math.min(100, count - i) }, (_, k) => open(i + k)));
  console.log(JSON.stringify({ open: sessions.length, failed, firstError }));
  process.once('SIGTERM', () => {
    for (const s of sessions) s.destroy();
    process.exit(0);
  });
  setInterval(() => undefined, 60_000); // hold
}

const [countText, octetText] = rest;
await idle(Number(countText), Number(octetText));
