import { describe, expect, it } from 'vitest';
import { hostAndPort, ipv4Bytes, ipv6Bytes, limitKeyOf, peerLimitKey, unmapAddress } from '../../src/core/ip.js';

describe('unmapAddress', () => {
  it.each([
    ['::ffff:192.0.2.1', '192.0.2.1'],
    ['::FFFF:192.0.2.1', '192.0.2.1'],
    ['::FfFf:192.0.2.1', '192.0.2.1'],
    ['::ffff:c000:201', '192.0.2.1'],
    ['0:0:0:0:0:ffff:192.0.2.1', '192.0.2.1'],
    ['0000:0000:0000:0000:0000:FFFF:C000:0201', '192.0.2.1'],
    ['::0:ffff:c000:201', '192.0.2.1'],
  ])('%s is the IPv4 address %s', (mapped, v4) => {
    expect(unmapAddress(mapped)).toBe(v4);
  });

  it.each([
    ['192.0.2.1', 'IPv4 already'],
    ['2001:db8::ffff:c000:201', 'ffff in a global address'],
    ['::1:ffff:c000:201', 'a non-zero group before ffff'],
    ['::ffff:0:c000:201', 'ffff in the wrong group (RFC 6052 style)'],
    ['::c000:201', 'IPv4-compatible, not mapped'],
    ['fe80::ffff:1%eth0', 'a zone id'],
    ['::ffff:192.0.2', 'a short IPv4 tail'],
    ['not-an-address', 'no address at all'],
    ['', 'empty'],
  ])('%s stays as it is (%s)', (text) => {
    expect(unmapAddress(text)).toBe(text);
  });

  it('scans text a client wrote once, not once from every colon', () => {
    // An orchestrator locates a forwarding header's first element as written: 200,000 colons took
    // `:.*ffff` about 2e10 backtracking steps (minutes); one pass takes well under a millisecond.
    for (const text of [':'.repeat(200_000), `${':'.repeat(200_000)}fff`]) expect(unmapAddress(text)).toBe(text);
  });
});

describe('address parsing', () => {
  it('reads dotted quads and refuses leading zeros, short forms and out-of-range parts', () => {
    expect([...ipv4Bytes('203.0.113.255')!]).toEqual([203, 0, 113, 255]);
    for (const bad of ['1.2.3', '01.2.3.4', '1.2.3.256', '1.2.3.4.5', '1..3.4', ' 1.2.3.4']) expect(ipv4Bytes(bad), bad).toBeNull();
  });

  it('reads every IPv6 spelling of one address to the same bytes', () => {
    const want = [...ipv6Bytes('2001:db8:0:0:0:0:0:1')!];
    expect(want.slice(0, 4)).toEqual([0x20, 0x01, 0x0d, 0xb8]);
    for (const spelling of ['2001:db8::1', '2001:DB8::0:1', '2001:0db8:0000::0001', '2001:db8::0.0.0.1']) expect([...ipv6Bytes(spelling)!], spelling).toEqual(want);
  });

  it('refuses malformed IPv6', () => {
    for (const bad of ['1::2::3', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7', '::12345', '1.2.3.4::', 'g::1', '1:2:3:4:5:6:7::8:9']) expect(ipv6Bytes(bad), bad).toBeNull();
  });
});

describe('limitKeyOf', () => {
  it('keys an IPv6 address by its /64, however it is spelled', () => {
    expect(limitKeyOf('2001:db8:1:2:aaaa:bbbb:cccc:dddd')).toBe('2001:db8:1:2::/64');
    expect(limitKeyOf('2001:db8:1:2::1')).toBe('2001:db8:1:2::/64');
    expect(limitKeyOf('2001:0DB8:0001:0002:ffff::')).toBe('2001:db8:1:2::/64');
    expect(limitKeyOf('2001:db8:1:3::1')).toBe('2001:db8:1:3::/64');
    expect(limitKeyOf('::1')).toBe('0:0:0:0::/64');
  });

  it('keeps IPv4 and anything unparseable as it is', () => {
    expect(limitKeyOf('203.0.113.9')).toBe('203.0.113.9');
    expect(limitKeyOf('')).toBe('');
    expect(limitKeyOf('not:an:address::x')).toBe('not:an:address::x');
  });
});

describe('peerLimitKey', () => {
  it("keys a socket's IPv4 peer on a dual-stack listener by its IPv4 address, not by the mapped /64 every IPv4 client shares", () => {
    expect(peerLimitKey('::ffff:10.0.0.1')).toBe('10.0.0.1');
    expect(peerLimitKey('::ffff:10.0.0.2')).not.toBe(peerLimitKey('::ffff:10.0.0.1'));
  });

  it('keys one IPv6 client, whichever address of its /64 it picks, once', () => {
    expect(peerLimitKey('2001:db8:1:2::1')).toBe(peerLimitKey('2001:db8:1:2:dead:beef::7'));
    expect(peerLimitKey('2001:db8:1:3::1')).not.toBe(peerLimitKey('2001:db8:1:2::1'));
  });

  it('gives a socket with no address yet (already closed) one key of its own', () => {
    expect(peerLimitKey(undefined)).toBe('');
  });
});

describe('hostAndPort', () => {
  it.each([
    ['127.0.0.1', 9090, '127.0.0.1:9090'],
    ['::1', 9090, '[::1]:9090'],
    ['::', 443, '[::]:443'],
    ['fe80::1%lo', 8443, '[fe80::1%lo]:8443'],
    ['localhost', 80, 'localhost:80'],
  ])('writes %s and port %s as %s', (host, port, expected) => {
    expect(hostAndPort(host, port)).toBe(expected);
  });
});
