/**
 * Whether a certificate the CA issued can be served for the name it was ordered for, judged before
 * it goes into the vault. Stored unchecked, one OpenSSL refuses (a chain it will not load, a weak
 * intermediate of a private CA), one for another name or another key replaced the good certificate
 * every router served: each then refused it at its first handshake and presented the default
 * certificate, which does not name the domain, and the manager, taking the name as renewed, ordered
 * it again only at the bad certificate's renewal time, about two months on.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import { thrownText } from '../core/errors.js';
import { keyMatches } from '../core/key-match.js';

/** What is wrong with serving `certPem` + `keyPem` for `name` at `now`; null when nothing is. */
export function issuedCertificateProblem(name: string, certPem: string, keyPem: string, now: number): string | null {
  let leaf: X509Certificate;
  try {
    // The first certificate of the chain: the one OpenSSL presents as the server's own.
    leaf = new X509Certificate(certPem);
  } catch (err) {
    return `it is not a PEM certificate (${thrownText(err)})`;
  }
  let matches: boolean;
  try {
    matches = keyMatches(leaf, createPrivateKey(keyPem));
  } catch (err) {
    return `its private key cannot be read (${thrownText(err)})`;
  }
  if (!matches) return 'it is not for the private key ordered with it';
  // Subject alternative names only, as browsers judge it (RFC 6125 §6.4.4).
  if (leaf.checkHost(name, { subject: 'never' }) === undefined) return `it does not name ${name} (subject alternative names: ${leaf.subjectAltName ?? 'none'})`;
  const notAfter = Date.parse(leaf.validTo);
  if (!(notAfter > now)) return `it expired on ${new Date(notAfter).toISOString()}`;
  try {
    createSecureContext({ cert: certPem, key: keyPem });
  } catch (err) {
    return `OpenSSL will not load it (${thrownText(err)})`;
  }
  return null;
}
