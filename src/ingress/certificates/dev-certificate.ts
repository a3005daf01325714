/**
 * Self-signed EC P-256 certificates for development and tests, made in memory (the `selfsigned`
 * package signs; Node's crypto cannot build X.509). Never for production: nothing trusts them.
 */
import { createPublicKey } from 'node:crypto';
import { isIP } from 'node:net';
import { normalizeServername } from './certificate-names.js';

/** A certificate (leaf first, PEM) and its PKCS#8 private key (PEM). */
export interface CertificatePem {
  readonly cert: string;
  readonly key: string;
}

export interface DevCertificateOptions {
  /** The function zone, e.g. `example.test`: the certificate covers `*.<zone>` and `<zone>`. */
  readonly zone: string;
  /** Extra DNS names or IP addresses, e.g. the machine's hostname. */
  readonly hosts?: readonly string[];
}

export interface SelfSignedOptions {
  /** subjectAltName entries: IP literals become IP entries, everything else DNS entries. */
  readonly names: readonly string[];
  /** Start of validity; default one hour ago, so clocks a little behind ours still accept it. */
  readonly validFrom?: Date;
  readonly validForMs?: number;
  /** Re-use this EC P-256 private key (PEM), as a renewal does; default a fresh key. */
  readonly key?: string;
  /** Also good as a TLS client certificate (extended key usage clientAuth), e.g. a router's towards orchestrators that require one. */
  readonly clientAuth?: boolean;
}

const HOUR_MS = 3_600_000;
const DEV_VALIDITY_MS = 30 * 24 * HOUR_MS;
const MAX_COMMON_NAME_CHARS = 64; // RFC 5280 ub-common-name

/** A development certificate for `*.<zone>`, `<zone>`, `localhost`, `127.0.0.1` and `::1`, valid 30 days. */
export async function generateDevCertificate(options: DevCertificateOptions): Promise<CertificatePem> {
  const zone = normalizeServername(options.zone.trim());
  if (zone.length === 0 || zone.startsWith('*')) throw new Error(`generateDevCertificate: "${options.zone}" is not a zone`);
  return generateSelfSignedCertificate({
    names: [`*.${zone}`, zone, 'localhost', '127.0.0.1', '::1', ...(options.hosts ?? [])],
    validForMs: DEV_VALIDITY_MS,
  });
}

/** A self-signed server certificate for `names`; a past window makes an expired one for tests. */
export async function generateSelfSignedCertificate(options: SelfSignedOptions): Promise<CertificatePem> {
  const names = [...new Set(options.names.map((name) => (isIP(name) === 0 ? normalizeServername(name) : name)))];
  const first = names[0];
  if (first === undefined) throw new Error('generateSelfSignedCertificate: at least one name is needed');
  const notBeforeDate = options.validFrom ?? new Date(Date.now() - HOUR_MS);
  const notAfterDate = new Date(notBeforeDate.getTime() + (options.validForMs ?? DEV_VALIDITY_MS));
  const keyPair =
    options.key === undefined
      ? undefined
      : { privateKey: options.key, publicKey: createPublicKey(options.key).export({ type: 'spki', format: 'pem' }).toString() };
  // Loaded on first use: the package and its ASN.1 stack cost ~100 ms of start-up that a router
  // with real certificates never needs.
  const { generate } = await import('selfsigned');
  const result = await generate(
    // Clients match on subjectAltName only (RFC 6125 §6.4.4); the CN is a label for humans.
    [{ name: 'commonName', value: first.length <= MAX_COMMON_NAME_CHARS ? first : 'edge-router self-signed' }],
    {
      keyType: 'ec',
      curve: 'P-256',
      algorithm: 'sha256', // the package defaults to SHA-1 signatures, which current clients refuse
      notBeforeDate,
      notAfterDate,
      ...(keyPair === undefined ? {} : { keyPair }),
      extensions: [
        { name: 'basicConstraints', cA: false, critical: true },
        { name: 'keyUsage', digitalSignature: true, critical: true },
        { name: 'extKeyUsage', serverAuth: true, ...(options.clientAuth === true ? { clientAuth: true } : {}) },
        {
          name: 'subjectAltName',
          altNames: names.map((name) => (isIP(name) === 0 ? { type: 2 as const, value: name } : { type: 7 as const, ip: name })),
        },
      ],
    },
  );
  return { cert: result.cert, key: result.private };
}
