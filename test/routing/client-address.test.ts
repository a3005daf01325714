import { BlockList } from 'node:net';
import { describe, expect, it } from 'vitest';
import { clientAddress, trustTest } from '../../src/routing/client-address.js';

const trusted = new BlockList();
trusted.addSubnet('10.0.0.0', 8, 'ipv4');
trusted.addSubnet('fd00::', 8, 'ipv6');
const isTrusted = trustTest(trusted);

describe('clientAddress', () => {
  it.each<[string, string, 'x-forwarded-for' | 'forwarded', string | undefined, string, string]>([
    ['an untrusted peer is the client, whatever it claims', '203.0.113.9', 'x-forwarded-for', '1.2.3.4', '203.0.113.9', 'peer'],
    ['an untrusted peer with a Forwarded header', '203.0.113.9', 'forwarded', 'for=1.2.3.4', '203.0.113.9', 'peer'],
    ['IPv4-mapped peers are unmapped', '::ffff:203.0.113.9', 'x-forwarded-for', undefined, '203.0.113.9', 'peer'],
    ['a trusted peer without the header is the client', '10.1.1.1', 'x-forwarded-for', undefined, '10.1.1.1', 'peer'],
    ['a trusted peer: the right-most untrusted XFF hop', '10.0.0.2', 'x-forwarded-for', '6.6.6.6, 198.51.100.7, 10.0.0.5', '198.51.100.7', 'x-forwarded-for'],
    ['spoofed left-most entries are ignored', '10.0.0.2', 'x-forwarded-for', '1.1.1.1, 198.51.100.7', '198.51.100.7', 'x-forwarded-for'],
    ['all hops trusted: the left-most', '10.0.0.2', 'x-forwarded-for', '10.9.9.9, 10.0.0.5', '10.9.9.9', 'x-forwarded-for'],
    ['XFF hops with ports and brackets', '10.0.0.2', 'x-forwarded-for', '[2001:db8::7]:443, 10.0.0.5:8080', '2001:db8::7', 'x-forwarded-for'],
    ['a garbage hop ends the walk at the hop to its right', '10.0.0.2', 'x-forwarded-for', '198.51.100.7, garbage, 10.0.0.5', '10.0.0.5', 'x-forwarded-for'],
    ['a garbage last hop leaves the peer', '10.0.0.2', 'x-forwarded-for', '198.51.100.7, not-an-ip', '10.0.0.2', 'peer'],
    ['Forwarded, walked from the right', '10.0.0.2', 'forwarded', 'for=192.0.2.60;proto=https, for=10.0.0.4', '192.0.2.60', 'forwarded'],
    ['Forwarded with quoted IPv6 and port', 'fd00::1', 'forwarded', 'for="[2001:db8:cafe::17]:4711"', '2001:db8:cafe::17', 'forwarded'],
    ['Forwarded with an obfuscated node stops there', '10.0.0.2', 'forwarded', 'for=192.0.2.60, for=_hidden, for=10.0.0.3', '10.0.0.3', 'forwarded'],
    ['Forwarded keys are case-insensitive', '10.0.0.2', 'forwarded', 'For=192.0.2.61;By=10.0.0.2', '192.0.2.61', 'forwarded'],
    ['an IPv4-mapped hop is unmapped and judged as IPv4', '10.0.0.2', 'x-forwarded-for', '::ffff:10.0.0.9', '10.0.0.9', 'x-forwarded-for'],
    // A proxy may spell a mapped address in hex: the client is still the IPv4 address (its quota key, its GeoIP row).
    ['a hex-spelled mapped hop is the IPv4 client', '10.0.0.2', 'x-forwarded-for', '[::FFFF:c633:6407]:80, 10.0.0.5', '198.51.100.7', 'x-forwarded-for'],
    // A proxy that writes host="…" quotes the Host its client sent: what is quoted must not split.
    ['a comma quoted in host= does not start an element', '10.0.0.2', 'forwarded', 'for=198.51.100.7;host="a,for=6.6.6.6;x="', '198.51.100.7', 'forwarded'],
    ['a semicolon quoted in host= does not start a pair', '10.0.0.2', 'forwarded', 'for=198.51.100.7;host="a;for=6.6.6.6"', '198.51.100.7', 'forwarded'],
    ['an escaped quote does not end a quoted value', '10.0.0.2', 'forwarded', 'for=198.51.100.7;host="a\\";for=6.6.6.6;x=\\"b"', '198.51.100.7', 'forwarded'],
    ['a trusted hop whose element quotes a comma passes the walk on', '10.0.0.2', 'forwarded', 'for=198.51.100.7, for=10.0.0.3;host="x,y"', '198.51.100.7', 'forwarded'],
    ['an unterminated quote on the client\'s side does not hide the proxy\'s element', '10.0.0.2', 'forwarded', 'for="x, for=198.51.100.7', '198.51.100.7', 'forwarded'],
    ['for= twice in one element is malformed and ends the walk', '10.0.0.2', 'forwarded', 'for=198.51.100.7;for=6.6.6.6', '10.0.0.2', 'peer'],
  ])('%s', (_name, peer, header, chain, ip, source) => {
    expect(clientAddress(peer, chain, header, isTrusted)).toEqual({ ip, source });
  });

  it('trusts nobody when no list is configured', () => {
    expect(clientAddress('10.0.0.2', '1.2.3.4', 'x-forwarded-for', trustTest(null))).toEqual({ ip: '10.0.0.2', source: 'peer' });
  });
});
