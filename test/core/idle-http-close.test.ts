/**
 * closeIdleHttpConnections on a real HTTP server and real sockets: an idle keep-alive connection
 * goes at once, an answer that has ended but is still leaving goes out whole first, and one still
 * being written is left alone.
 */
import { once } from 'node:events';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { answersLeft, closeIdleHttpConnections } from '../../src/core/idle-http-close.js';
import { until } from '../support/until.js';

const BYTES = 16 * 1024 * 1024;
const cleanup: Array<() => void> = [];
afterEach(() => cleanup.splice(0).forEach((fn) => fn()));

async function serve(answer: (url: string, res: ServerResponse) => void): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => answer(req.url ?? '/', res));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanup.push(() => {
    server.closeAllConnections();
    server.close();
  });
  return { server, port: (server.address() as { port: number }).port };
}

async function client(port: number, path: string): Promise<{ socket: Socket; received: () => number; tail: () => string; closed: Promise<void> }> {
  const socket = connect(port, '127.0.0.1');
  cleanup.push(() => socket.destroy());
  await once(socket, 'connect');
  let bytes = 0;
  let last = '';
  socket.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
    last = (last + chunk.toString('latin1')).slice(-16);
  });
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.write(`GET ${path} HTTP/1.1\r\nhost: x\r\n\r\n`);
  return { socket, received: () => bytes, tail: () => last, closed };
}

describe('closeIdleHttpConnections', () => {
  it('lets an answer that has ended but is still leaving go out whole, then closes its connection', async () => {
    let ended = false;
    const { server, port } = await serve((_url, res) => {
      res.writeHead(200, { 'content-length': BYTES });
      res.end(Buffer.alloc(BYTES, 120));
      ended = true;
    });
    const { socket, received, closed } = await client(port, '/big');
    socket.pause();
    await until('the answer ended', () => ended);
    closeIdleHttpConnections(server);
    socket.resume();
    await closed;
    // Node's closeIdleConnections() destroyed it here: about 4 MB of the 16 arrived.
    expect(received()).toBeGreaterThan(BYTES);
    expect(received() - BYTES).toBeLessThan(200);
  });

  it('closes a keep-alive connection between requests at once, and leaves one whose answer is still being written', async () => {
    let writing: ServerResponse | undefined;
    const { server, port } = await serve((url, res) => {
      if (url === '/open') {
        res.writeHead(200, { 'content-length': 10 });
        res.write('01234');
        writing = res;
      } else res.end('ok');
    });
    const idle = await client(port, '/quick');
    await until('the quick answer read', () => idle.received() > 0);
    const busy = await client(port, '/open');
    await until('the open answer begun', () => busy.received() > 0);
    closeIdleHttpConnections(server);
    await idle.closed;
    expect(busy.socket.destroyed).toBe(false);
    writing!.end('56789');
    await until('the rest of the open answer read', () => busy.tail().endsWith('0123456789'));
    expect(busy.socket.destroyed).toBe(false);
  });

  it('answersLeft waits until no connection holds an answer still leaving, or says it did not within its time', async () => {
    let sent: ServerResponse | undefined;
    const { port } = await serve((_url, res) => {
      res.writeHead(200, { 'content-length': BYTES });
      res.end(Buffer.alloc(BYTES, 120));
      sent = res;
    });
    const { socket, received, closed } = await client(port, '/big');
    socket.pause();
    await until('the answer ended', () => sent !== undefined);
    const serverSide = sent!.socket!;
    expect(await answersLeft([serverSide], 200)).toBe(false);
    socket.resume();
    expect(await answersLeft([serverSide], 10_000)).toBe(true);
    expect(serverSide.writableLength).toBe(0);
    await until('all of it read', () => received() > BYTES);
    socket.end();
    await closed;
    // Nothing left to send on a closed connection either.
    expect(await answersLeft([serverSide], 0)).toBe(true);
  });
});
