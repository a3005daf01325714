/** Whether a private key belongs to a certificate: the TLS files the router serves and the client certificate it presents both ask. */
import type { KeyObject, X509Certificate } from 'node:crypto';

export function keyMatches(certificate: X509Certificate, privateKey: KeyObject): boolean {
  try {
    return certificate.checkPrivateKey(privateKey);
  } catch {
    return false; // a key of another type (RSA key, EC certificate) throws instead of answering false
  }
}
