import { describe, expect, it } from 'vitest';
import { H2_FRAME, rapidResetFrames, requestsThenResets } from '../../bench/raw-h2.js';

/** The frames in `bytes` as type and stream id, with each RST_STREAM's error code. */
function framesOf(bytes: Buffer): string[] {
  const frames: string[] = [];
  for (let at = 0; at < bytes.length; ) {
    const length = bytes.readUIntBE(at, 3);
    const type = bytes[at + 3]!;
    const streamId = bytes.readUInt32BE(at + 5);
    const name = type === H2_FRAME.HEADERS ? 'HEADERS' : type === H2_FRAME.RST_STREAM ? `RST_STREAM(${bytes.readUInt32BE(at + 9)})` : String(type);
    frames.push(`${name} ${streamId}`);
    at += 9 + length;
  }
  return frames;
}

describe('raw HTTP/2 rapid-reset frames', () => {
  it('packs each stream\'s reset (CANCEL) right after its request, on odd rising stream ids', () => {
    expect(framesOf(rapidResetFrames(5, 3, '/r', 'example.test'))).toEqual(['HEADERS 5', 'RST_STREAM(8) 5', 'HEADERS 7', 'RST_STREAM(8) 7', 'HEADERS 9', 'RST_STREAM(8) 9']);
  });

  it('splits the same streams into their requests and their resets', () => {
    const { requests, resets } = requestsThenResets(1, 2, '/r', 'example.test');
    expect(framesOf(requests)).toEqual(['HEADERS 1', 'HEADERS 3']);
    expect(framesOf(resets)).toEqual(['RST_STREAM(8) 1', 'RST_STREAM(8) 3']);
    expect(Buffer.concat([requests, resets]).length).toBe(rapidResetFrames(1, 2, '/r', 'example.test').length);
  });
});
