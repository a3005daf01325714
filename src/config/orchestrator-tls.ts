/**
 * What the router needs to speak TLS to https orchestrators beyond the system's defaults: a
 * private CA their certificates chain to (--orchestrator-ca), and a client certificate with its key
 * that they can require of routers (--orchestrator-client-cert, --orchestrator-client-key: mutual
 * TLS, so that only routers reach an orchestrator that crosses networks you do not own). The CA is
 * added to what Node trusts by default, not put in its place.
 *
 * Read once at start and checked here, so that a bad file stops the start with its flag and path
 * named rather than failing every probe later. Used by the region pools (requests, WebSocket
 * tunnels, pre-warming) and the probers alike.
 */
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { MAX_PEM_FILE_BYTES, readProblemOf, readRegularText } from '../core/regular-file.js';
import { rootCertificates } from 'node:tls';
import { ConfigError } from '../core/errors.js';
import { isFileContents, pathWorthShowing, unshownSecretFile } from '../core/file-contents.js';
import { keyMatches } from '../core/key-match.js';
import type { OrchestratorTls } from '../core/types.js';

export type { OrchestratorTls };

type Input = { readonly value: string; readonly source: string };

export interface OrchestratorTlsInputs {
  readonly ca?: Input;
  readonly clientCert?: Input;
  readonly clientKey?: Input;
}

const CERTIFICATE_BLOCK = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g;
const PRIVATE_KEY_LINE = /-----BEGIN [A-Z ]*PRIVATE KEY-----/;

/** Null when no flag was given (the system's CAs, no client certificate). */
export async function resolveOrchestratorTls(inputs: OrchestratorTlsInputs): Promise<OrchestratorTls | null> {
  const { ca, clientCert, clientKey } = inputs;
  if ((clientCert === undefined) !== (clientKey === undefined)) {
    const given = (clientCert ?? clientKey)!;
    throw new ConfigError(`${given.source}: a client certificate and its key go together: give both --orchestrator-client-cert and --orchestrator-client-key`);
  }
  const tls: { ca?: string; cert?: string; key?: string } = {};
  if (ca !== undefined) tls.ca = [...(await defaultCaCertificates()), await readCaCertificates(ca)].join('\n');
  if (clientCert !== undefined && clientKey !== undefined) Object.assign(tls, await readClientPair(clientCert, clientKey));
  return Object.keys(tls).length === 0 ? null : Object.freeze(tls);
}

/**
 * What Node trusts by default, for the `ca` option to add to rather than replace: node:tls takes
 * `ca` as the whole trust store, so given the private CA alone, every orchestrator whose
 * certificate chains to a public CA (or one added with NODE_EXTRA_CA_CERTS) was refused (found in
 * review). Node 20 has no call that returns its default store (tls.getCACertificates came in
 * 22.15): it is rebuilt from the bundled roots and the NODE_EXTRA_CA_CERTS file (one Node could
 * not read was warned about at its start, and adds nothing here either). An operating-system store
 * chosen with --use-openssl-ca is not included: name its CAs in --orchestrator-ca too.
 */
async function defaultCaCertificates(): Promise<string[]> {
  const extraPath = process.env.NODE_EXTRA_CA_CERTS;
  const extra = extraPath === undefined || extraPath === '' ? '' : await readRegularText(extraPath, MAX_PEM_FILE_BYTES).catch(() => '');
  return [...rootCertificates, ...(extra.match(CERTIFICATE_BLOCK) ?? [])];
}

/** `secret`: what the file holds when it is one ("private key"), for an error that must not show its value. */
async function readPem(input: Input, expected: string, secret?: string): Promise<{ path: string; text: string }> {
  const path = input.value;
  if (path.trim() === '') throw new ConfigError(`${input.source}: expected ${expected}, got ""`);
  // The PEM itself (a Secret put in the environment): "cannot read <it>" printed the private key.
  if (isFileContents(path)) throw new ConfigError(`${input.source}: expected ${expected}, got PEM text (not shown: it may be a private key); write it to a file and give that file's path`);
  try {
    return { path, text: await readRegularText(path, MAX_PEM_FILE_BYTES) };
  } catch (err) {
    const code = readProblemOf(err);
    if (secret !== undefined && !pathWorthShowing(path)) throw new ConfigError(`${input.source}: ${unshownSecretFile(`${secret} file`, secret, code)}`);
    throw new ConfigError(`${input.source}: cannot read ${path}: ${code}`);
  }
}

/** Every certificate of the file, each parsed; nothing else kept (comments, stray text). */
function certificatesOf(input: Input, path: string, text: string): { blocks: string[]; first: X509Certificate; parsed: X509Certificate[] } {
  const blocks = text.match(CERTIFICATE_BLOCK) ?? [];
  if (blocks.length === 0) throw new ConfigError(`${input.source}: ${path}: expected PEM certificates (-----BEGIN CERTIFICATE-----), found none`);
  const parsed = blocks.map((block, i) => {
    try {
      return new X509Certificate(block);
    } catch (err) {
      throw new ConfigError(`${input.source}: ${path}: certificate ${i + 1} of ${blocks.length} is not valid: ${(err as Error).message}`);
    }
  });
  return { blocks, first: parsed[0]!, parsed };
}

async function readCaCertificates(input: Input, now = new Date()): Promise<string> {
  const { path, text } = await readPem(input, 'a path to a PEM file of CA certificates');
  const { blocks, parsed } = certificatesOf(input, path, text);
  if (PRIVATE_KEY_LINE.test(text)) throw new ConfigError(`${input.source}: ${path}: holds a private key; give only the CA's certificates`);
  // A bundle may keep an old CA beside its successor; one that holds no CA valid now verifies no
  // orchestrator at all: every request and probe to an https region would fail its handshake.
  const validNow = (cert: X509Certificate) => new Date(cert.validFrom).getTime() <= now.getTime() && now.getTime() < new Date(cert.validTo).getTime();
  if (!parsed.some(validNow)) {
    const newest = parsed.reduce((a, b) => (new Date(b.validTo).getTime() > new Date(a.validTo).getTime() ? b : a));
    const until = new Date(newest.validTo);
    const what = until.getTime() <= now.getTime() ? `expired on ${until.toISOString()}` : `is valid only from ${new Date(newest.validFrom).toISOString()}`;
    throw new ConfigError(`${input.source}: ${path}: no certificate in it is valid now (the one that expires last ${what})`);
  }
  return blocks.join('\n');
}

async function readClientPair(certInput: Input, keyInput: Input, now = new Date()): Promise<{ cert: string; key: string }> {
  const [certFile, keyFile] = await Promise.all([readPem(certInput, 'a path to a PEM client certificate'), readPem(keyInput, 'a path to a PEM private key', 'private key')]);
  const { blocks, first: leaf } = certificatesOf(certInput, certFile.path, certFile.text);
  if (!PRIVATE_KEY_LINE.test(keyFile.text)) throw new ConfigError(`${keyInput.source}: ${keyFile.path}: expected a PEM private key (-----BEGIN … PRIVATE KEY-----), found none`);
  let key: KeyObject;
  try {
    key = createPrivateKey(keyFile.text);
  } catch (err) {
    throw new ConfigError(`${keyInput.source}: ${keyFile.path}: not a usable private key: ${(err as Error).message}`);
  }
  if (!keyMatches(leaf, key)) throw new ConfigError(`${keyInput.source}: ${keyFile.path}: this key does not belong to the certificate in ${certFile.path}`);
  const validTo = new Date(leaf.validTo);
  if (validTo.getTime() <= now.getTime()) throw new ConfigError(`${certInput.source}: ${certFile.path}: the certificate expired on ${validTo.toISOString()}`);
  // Refused by every orchestrator that checks it until then, as --tls-cert refuses one (certificate-pair.ts).
  const validFrom = new Date(leaf.validFrom);
  if (validFrom.getTime() > now.getTime()) throw new ConfigError(`${certInput.source}: ${certFile.path}: the certificate is not valid before ${validFrom.toISOString()}`);
  return { cert: blocks.join('\n'), key: keyFile.text };
}
