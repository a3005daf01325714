/**
 * The router's ACME flags: certificates for custom domains from a CA such as Let's Encrypt
 * (src/acme/). Off unless `--acme-directory` is given.
 */
import { ConfigError, UsageError } from '../core/errors.js';
import { MAX_PEM_FILE_BYTES, readProblemOf, readRegularText } from '../core/regular-file.js';
import { sourceOf, stringFlag, valueOf, type FlagSpec, type ParsedFlags } from './flags.js';
import { parseInteger } from './parse-values.js';

export const ACME_FLAGS: readonly FlagSpec[] = [
  {
    name: 'acme-directory',
    type: 'string',
    env: 'EDGE_ACME_DIRECTORY',
    valueName: 'url',
    defaultText: 'none: no ACME',
    description: "order certificates for custom domains no --tls-dir certificate covers from this ACME CA (HTTP-01 on the plain listener, which must be the domains' port 80), e.g. https://acme-v02.api.letsencrypt.org/directory",
  },
  { name: 'acme-email', type: 'string', env: 'EDGE_ACME_EMAIL', valueName: 'address', description: "contact address for the ACME account (the CA's expiry notices)" },
  { name: 'acme-ca-file', type: 'string', env: 'EDGE_ACME_CA_FILE', valueName: 'file', description: "CA certificates to trust for the ACME server's own HTTPS (a private CA)" },
  {
    name: 'acme-eab-kid',
    type: 'string',
    env: 'EDGE_ACME_EAB_KID',
    valueName: 'id',
    description: 'External Account Binding key id, for CAs that require one (ZeroSSL, Google Trust Services); with --acme-eab-hmac-key',
  },
  {
    name: 'acme-eab-hmac-key',
    type: 'string',
    env: 'EDGE_ACME_EAB_HMAC_KEY',
    valueName: 'key',
    description: "the External Account Binding's HMAC key as the CA gave it (base64url); a secret: prefer the env variable, flags show in ps",
  },
  { name: 'acme-check-interval', type: 'string', env: 'EDGE_ACME_CHECK_INTERVAL_MS', valueName: 'ms', default: '30000', description: 'how often each router looks for custom domains to order or renew, and for certificates other routers ordered' },
];

export interface AcmeSettings {
  readonly directoryUrl: string;
  readonly email?: string;
  readonly caPem?: string;
  /** RFC 8555 §7.3.4: ties the new ACME account to an account the operator holds at the CA. */
  readonly externalAccountBinding?: { readonly kid: string; readonly hmacKey: string };
  readonly checkEveryMs: number;
}

/**
 * The ACME settings, or null when off. With several workers the challenge answers and orders must
 * be shared between processes, which only the Redis registry does.
 */
export async function acmeSettings(flags: ParsedFlags, shared: { workers: number; redis: boolean }): Promise<AcmeSettings | null> {
  const directoryUrl = stringFlag(flags, 'acme-directory');
  const dependents = ['acme-email', 'acme-ca-file', 'acme-eab-kid', 'acme-eab-hmac-key'].filter((name) => stringFlag(flags, name) !== undefined);
  if (directoryUrl === undefined) {
    if (dependents.length > 0) throw new UsageError(`${sourceOf(flags, dependents[0]!)} applies only with --acme-directory`);
    return null;
  }
  let url: URL | undefined;
  try {
    url = new URL(directoryUrl);
  } catch {
    url = undefined;
  }
  if (url?.protocol !== 'https:') throw new UsageError(`${sourceOf(flags, 'acme-directory')}: expected the https:// URL of an ACME directory, got ${JSON.stringify(directoryUrl)}`);
  if (shared.workers > 1 && !shared.redis) {
    throw new UsageError(`${sourceOf(flags, 'acme-directory')} with several workers needs --redis: the CA's check may reach any worker, and only the Redis registry shares the answers between them`);
  }
  const email = stringFlag(flags, 'acme-email');
  if (email !== undefined && !/^[^\s@]+@[^\s@]+$/.test(email)) throw new UsageError(`${sourceOf(flags, 'acme-email')}: expected an email address, got ${JSON.stringify(email)}`);
  const caPem = await acmeCaPem(flags);
  const externalAccountBinding = eabSettings(flags);
  return {
    directoryUrl,
    ...(email === undefined ? {} : { email }),
    ...(caPem === undefined ? {} : { caPem }),
    ...(externalAccountBinding === undefined ? {} : { externalAccountBinding }),
    checkEveryMs: parseInteger(valueOf(flags, 'acme-check-interval'), sourceOf(flags, 'acme-check-interval'), 100, 3_600_000),
  };
}

/** Both EAB values or neither. The key is checked for form only; the message never shows it. */
function eabSettings(flags: ParsedFlags): AcmeSettings['externalAccountBinding'] {
  const kid = stringFlag(flags, 'acme-eab-kid');
  const hmacKey = stringFlag(flags, 'acme-eab-hmac-key');
  if (kid === undefined && hmacKey === undefined) return undefined;
  if (kid === undefined) throw new UsageError(`${sourceOf(flags, 'acme-eab-hmac-key')} needs --acme-eab-kid, the key id the CA gave with it`);
  if (hmacKey === undefined) throw new UsageError(`${sourceOf(flags, 'acme-eab-kid')} needs --acme-eab-hmac-key (or EDGE_ACME_EAB_HMAC_KEY), the HMAC key the CA gave with it`);
  if (kid.trim() === '') throw new UsageError(`${sourceOf(flags, 'acme-eab-kid')}: expected the CA's key id, got ""`);
  // base64url as CAs hand it out (plain base64, padded or not, decodes the same); at least 128 bits.
  if (!/^[A-Za-z0-9_+/-]{22,}={0,2}$/.test(hmacKey)) {
    throw new UsageError(`${sourceOf(flags, 'acme-eab-hmac-key')}: expected the base64url HMAC key the CA gave (letters, digits, - and _, at least 22 characters); the value given is not one (not shown: it is a secret)`);
  }
  return { kid, hmacKey };
}

/**
 * The CA certificates --acme-ca-file names, read as every PEM file is (a regular file, at most
 * MAX_PEM_FILE_BYTES: a FIFO held the start); each refusal names the setting and the file.
 */
async function acmeCaPem(flags: ParsedFlags): Promise<string | undefined> {
  const caFile = stringFlag(flags, 'acme-ca-file');
  if (caFile === undefined) return undefined;
  const source = sourceOf(flags, 'acme-ca-file');
  if (caFile.trim() === '') throw new UsageError(`${source}: expected the path of a PEM file of CA certificates, got ""`);
  let pem: string;
  try {
    pem = await readRegularText(caFile, MAX_PEM_FILE_BYTES);
  } catch (err) {
    throw new ConfigError(`${source}: ${caFile}: cannot read (${readProblemOf(err)})`);
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new UsageError(`${source}: ${caFile}: expected PEM certificates (-----BEGIN CERTIFICATE-----)`);
  return pem;
}
