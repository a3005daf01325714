/**
 * Reads certificate + private key pairs (one pair, or a `--tls-dir` of `<stem>.crt` + `<stem>.key`)
 * and proves each servable before the store indexes it: both PEM, the key matches, the leaf is in
 * its validity window and names at least one DNS host. Names come from the certificate, never
 * from the file name. Refusals name the file; nothing here builds TLS contexts.
 */
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { MAX_PEM_FILE_BYTES, NotARegularFile, readProblemOf, readRegularText } from '../../core/regular-file.js';
import { extname, join } from 'node:path';
import { EdgeError } from '../../core/errors.js';
import { pathWorthShowing, unshownSecretFile } from '../../core/file-contents.js';
import { keyMatches } from '../../core/key-match.js';
import { dnsNamesFromSubjectAltName } from './certificate-names.js';

/** TLS material that cannot be served; `file` is the certificate, key or directory at fault. */
export class CertificateError extends EdgeError {
  override readonly name = 'CertificateError';
  constructor(
    readonly file: string,
    readonly reason: string,
    /** For a certificate refused as not yet valid: when it becomes servable. */
    readonly validFrom?: Date,
  ) {
    super('certificate', `${file}: ${reason}`);
  }
}

export interface CertificatePair {
  /** Where the certificate came from, for errors and events (a path, or `dev certificate`). */
  readonly certFile: string;
  readonly cert: string;
  readonly key: string;
  /** subjectAltName DNS names, normalised; wildcards kept as `*.example.com`. */
  readonly names: readonly string[];
  readonly validTo: Date;
}

export async function loadCertificatePair(certFile: string, keyFile: string, now: Date = new Date()): Promise<CertificatePair> {
  const [cert, key] = await Promise.all([readText(certFile), readText(keyFile, 'private key')]);
  return parseCertificatePair({ certFile, keyFile }, { cert, key }, now);
}

export const CERT_EXTENSION = '.crt';
export const KEY_EXTENSION = '.key';

/** One pair of a directory that could not be used, by the path its certificate has (or would have). */
export interface RefusedPair {
  readonly certFile: string;
  readonly error: CertificateError;
}

/**
 * Every `<stem>.crt` + `<stem>.key` in `dir`, each judged on its own: the usable ones, and the
 * refused ones with their errors (each names its file), so one customer's broken file need not
 * hold back everyone else's. A half pair is refused rather than skipped, so a forgotten key is an
 * error at once, not a silently missing name. Dotfiles (editor swap files, Kubernetes `..data`)
 * and other extensions are ignored. An empty directory gives no pairs; only a directory that
 * cannot be read at all throws.
 */
export async function readCertificateDirectory(dir: string, now: Date = new Date()): Promise<{ pairs: CertificatePair[]; refused: RefusedPair[] }> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CertificateError(dir, code === 'ENOENT' ? 'directory not found' : `cannot read the directory (${code ?? String(err)})`);
  }
  const present = new Set(entries);
  const stems = new Set<string>();
  for (const entry of entries) {
    const ext = extname(entry);
    if (!entry.startsWith('.') && (ext === CERT_EXTENSION || ext === KEY_EXTENSION)) stems.add(entry.slice(0, -ext.length));
  }
  const results = await Promise.all(
    [...stems].sort().map(async (stem): Promise<CertificatePair | RefusedPair> => {
      const certFile = join(dir, stem + CERT_EXTENSION);
      const keyFile = join(dir, stem + KEY_EXTENSION);
      if (!present.has(stem + CERT_EXTENSION)) return { certFile, error: new CertificateError(keyFile, `no ${stem}${CERT_EXTENSION} beside this key`) };
      if (!present.has(stem + KEY_EXTENSION)) return { certFile, error: new CertificateError(certFile, `no ${stem}${KEY_EXTENSION} beside this certificate`) };
      try {
        return await loadCertificatePair(certFile, keyFile, now);
      } catch (err) {
        if (err instanceof CertificateError) return { certFile, error: err };
        throw err;
      }
    }),
  );
  const pairs: CertificatePair[] = [];
  const refused: RefusedPair[] = [];
  for (const result of results) {
    if ('error' in result) refused.push(result);
    else pairs.push(result);
  }
  return { pairs, refused };
}

/** Validates in-memory PEM; the file names only label errors. */
export function parseCertificatePair(
  files: { readonly certFile: string; readonly keyFile: string },
  pem: { readonly cert: string; readonly key: string },
  now: Date = new Date(),
): CertificatePair {
  const { certFile, keyFile } = files;
  if (!pem.cert.includes('-----BEGIN CERTIFICATE-----')) {
    throw new CertificateError(certFile, 'not a PEM certificate (no "-----BEGIN CERTIFICATE-----" line)');
  }
  let leaf: X509Certificate;
  try {
    // Parses the first certificate: the leaf, when the file is a chain in the usual order.
    leaf = new X509Certificate(pem.cert);
  } catch (err) {
    throw new CertificateError(certFile, `not a valid PEM certificate (${(err as Error).message})`);
  }
  if (!/-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----/.test(pem.key)) {
    throw new CertificateError(keyFile, 'not a PEM private key (no "-----BEGIN … PRIVATE KEY-----" line)');
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(pem.key);
  } catch (err) {
    throw new CertificateError(keyFile, `not a usable private key (${(err as Error).message})`);
  }
  if (!keyMatches(leaf, privateKey)) {
    // OpenSSL serves the file's first certificate as the server's own. A chain pasted intermediate
    // first holds the right key's certificate further down: "does not match" sent operators after
    // the wrong file.
    const position = laterCertificateMatching(pem.cert, privateKey);
    if (position !== undefined) {
      throw new CertificateError(certFile, `certificate ${position.index} of ${position.count} in it matches the key: the server's own certificate must come first, then its chain`);
    }
    throw new CertificateError(keyFile, `private key does not match the certificate in ${certFile}`);
  }
  const validFrom = new Date(leaf.validFrom);
  const validTo = new Date(leaf.validTo);
  if (validTo.getTime() <= now.getTime()) throw new CertificateError(certFile, `certificate expired on ${validTo.toISOString()}`);
  if (validFrom.getTime() > now.getTime()) throw new CertificateError(certFile, `certificate is not valid before ${validFrom.toISOString()}`, validFrom);
  const names = dnsNamesFromSubjectAltName(leaf.subjectAltName);
  if (names.length === 0) {
    // Clients ignore the common name when matching hosts (RFC 6125 §6.4.4), so it is no fallback.
    throw new CertificateError(certFile, 'certificate has no DNS names in subjectAltName');
  }
  return { certFile, cert: pem.cert, key: pem.key, names, validTo };
}

/** `secret`: what the file holds when it is one ("private key"): a path that may be the key itself is not shown. */
async function readText(file: string, secret?: string): Promise<string> {
  try {
    return await readRegularText(file, MAX_PEM_FILE_BYTES);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (secret !== undefined && !pathWorthShowing(file)) throw new CertificateError(`(the ${secret} file)`, unshownSecretFile(`${secret} file`, secret, readProblemOf(err)));
    if (err instanceof NotARegularFile) throw new CertificateError(file, `expected a PEM file, found ${err.found}`);
    throw new CertificateError(file, code === 'ENOENT' ? 'file not found' : `cannot read the file (${code ?? String(err)})`);
  }
}

const CERTIFICATE_BLOCK = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g;

/** Which certificate after the first (1-based, of how many) the key belongs to, if any. */
function laterCertificateMatching(certPem: string, privateKey: KeyObject): { index: number; count: number } | undefined {
  const blocks = certPem.match(CERTIFICATE_BLOCK) ?? [];
  for (let i = 1; i < blocks.length; i++) {
    let certificate: X509Certificate;
    try {
      certificate = new X509Certificate(blocks[i]!);
    } catch {
      continue; // a broken block further down says nothing about the order
    }
    if (keyMatches(certificate, privateKey)) return { index: i + 1, count: blocks.length };
  }
  return undefined;
}
