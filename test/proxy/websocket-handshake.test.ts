import { describe, expect, it } from 'vitest';
import { answersWebSocketKey, isWebSocketKey, newWebSocketKey, webSocketAcceptFor } from '../../src/proxy/websocket-handshake.js';

describe('the WebSocket handshake (RFC 6455 §4)', () => {
  it("answers the RFC's sample key with its sample accept", () => {
    expect(webSocketAcceptFor('dGhlIHNhbXBsZSBub25jZQ==')).toBe('s3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
  });

  it('takes a key of 16 bytes, base64, and nothing else', () => {
    expect(isWebSocketKey('dGhlIHNhbXBsZSBub25jZQ==')).toBe(true);
    expect(isWebSocketKey(newWebSocketKey())).toBe(true);
    expect(isWebSocketKey(undefined)).toBe(false);
    expect(isWebSocketKey('')).toBe(false);
    expect(isWebSocketKey('c2hvcnQ=')).toBe(false); // 5 bytes
    expect(isWebSocketKey('dGhlIHNhbXBsZSBub25jZQ==, AQEBAQEBAQEBAQEBAQEBAQ==')).toBe(false); // two, as Node joins them
  });

  it("accepts a 101 only with exactly the key's answer", () => {
    const key = 'dGhlIHNhbXBsZSBub25jZQ==';
    expect(answersWebSocketKey({ 'sec-websocket-accept': 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=' }, key)).toBe(true);
    expect(answersWebSocketKey({}, key)).toBe(false);
    expect(answersWebSocketKey({ 'sec-websocket-accept': 'bm90IHRoZSBhbnN3ZXI=' }, key)).toBe(false);
    expect(answersWebSocketKey({ 'sec-websocket-accept': ['s3pPLMBiTxaQ9kYGzzhZRbK+xOo=', 's3pPLMBiTxaQ9kYGzzhZRbK+xOo='] }, key)).toBe(false);
  });
});
