/**
 * The check a certificate from the CA passes before it goes into the vault (issued-certificate-check.ts),
 * on real certificates: one it names and its key, and each way one can be unservable.
 */
import { generate } from 'selfsigned';
import { describe, expect, it } from 'vitest';
import { issuedCertificateProblem } from '../../src/acme/issued-certificate-check.js';
import { generateSelfSignedCertificate } from '../../src/ingress/certificates/dev-certificate.js';

const DAY = 86_400_000;

describe('issuedCertificateProblem', () => {
  it('passes a certificate that names the domain, for its key, in its validity window', async () => {
    const { cert, key } = await generateSelfSignedCertificate({ names: ['shop.example.com'] });
    expect(issuedCertificateProblem('shop.example.com', cert, key, Date.now())).toBeNull();
  });

  it('refuses one for another key, another name (its common name does not count), past its end, or one OpenSSL will not load, saying which', async () => {
    const { cert, key } = await generateSelfSignedCertificate({ names: ['shop.example.com'] });
    const other = await generateSelfSignedCertificate({ names: ['shop.example.com'] });
    const now = Date.now();
    expect(issuedCertificateProblem('shop.example.com', cert, other.key, now)).toBe('it is not for the private key ordered with it');
    expect(issuedCertificateProblem('pay.example.com', cert, key, now)).toBe('it does not name pay.example.com (subject alternative names: DNS:shop.example.com)');
    expect(issuedCertificateProblem('shop.example.com', cert, key, now + 31 * DAY)).toMatch(/^it expired on \d{4}-\d\d-\d\dT/);
    expect(issuedCertificateProblem('shop.example.com', 'not a certificate', key, now)).toMatch(/^it is not a PEM certificate \(/);
    expect(issuedCertificateProblem('shop.example.com', cert, 'not a key', now)).toMatch(/^its private key cannot be read \(/);
    // Named in its common name only: clients match on subject alternative names (RFC 6125 §6.4.4).
    const cnOnly = await generate([{ name: 'commonName', value: 'shop.example.com' }], { keySize: 2048, algorithm: 'sha256', extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: 'www.example.com' }] }] });
    expect(issuedCertificateProblem('shop.example.com', cnOnly.cert, cnOnly.private, now)).toBe('it does not name shop.example.com (subject alternative names: DNS:www.example.com)');
    // A 512-bit RSA key: the certificate parses and matches its key, but OpenSSL refuses to serve it.
    const weak = await generate([{ name: 'commonName', value: 'shop.example.com' }], { keySize: 512, algorithm: 'sha256', extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: 'shop.example.com' }] }] });
    expect(issuedCertificateProblem('shop.example.com', weak.cert, weak.private, now)).toMatch(/^OpenSSL will not load it \(.*ee key too small\)$/);
  });
});
