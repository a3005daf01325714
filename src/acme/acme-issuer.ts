/**
 * Orders one certificate from an ACME CA (RFC 8555) through acme-client: the account key shared by
 * every router (so they are one ACME account, with one set of rate limits), an ECDSA P-256 key per
 * certificate, and the HTTP-01 challenge, whose answer goes into the vault for whichever router the
 * CA's request reaches. The issuer does not check the answer itself before asking the CA: behind
 * a load balancer its own request would prove nothing more than the CA's, and a failure comes back
 * from the CA with its reason.
 */
import { Agent } from 'node:https';
// Types only: the module itself is loaded by AcmeIssuer.open (see there).
import type AcmeClient from 'acme-client';
import type { CertificateVault, IssuedCertificate } from '../core/certificate-vault.js';
import { issuedCertificateProblem } from './issued-certificate-check.js';

/** RFC 5280's ub-common-name. */
const MAX_COMMON_NAME = 64;

export interface AcmeIssuerOptions {
  /** The CA's directory URL, e.g. https://acme-v02.api.letsencrypt.org/directory. */
  readonly directoryUrl: string;
  /** A contact address for the account (the CA's expiry and policy mail). */
  readonly email?: string;
  /** The CA certificates (PEM) to trust for the ACME server instead of Node's own: a private CA, or a test server. */
  readonly caPem?: string;
  /** External Account Binding (RFC 8555 §7.3.4), for CAs that open accounts only for their customers. */
  readonly externalAccountBinding?: { readonly kid: string; readonly hmacKey: string };
  readonly vault: CertificateVault;
  /** How long a challenge answer stays in the vault (default 10 min: longer than any order takes). */
  readonly challengeTtlMs?: number;
  /** Each request to the CA (default 30 s). */
  readonly requestTimeoutMs?: number;
}

/**
 * The CA refused a request for a rate limit (HTTP 429, RFC 8555 §6.6): nothing is gained by asking
 * before `retryAt` (its Retry-After; unknown: null). Let's Encrypt's limits are per account (new
 * orders), per name (duplicate certificates, failed validations) and per registered domain.
 */
export class RateLimitedError extends Error {
  constructor(
    message: string,
    readonly retryAt: number | null,
  ) {
    super(message);
    this.name = 'RateLimitedError';
  }
}

/**
 * acme-client retries a 429 or a 5xx itself, up to five times, sleeping for the CA's Retry-After
 * each time: hours for Let's Encrypt's order limits. The order then held its lease until the
 * manager gave it up (nine tenths of the lease), and went on in the background after that, to be
 * taken up again hours later by nobody, outside any lease. Its retries are turned off here (the
 * manager retries with a backoff every router shares), and a 429 comes back as RateLimitedError
 * with the CA's retry time. Once per process: acme-client has one axios instance.
 */
let rateLimitsSurfaced = false;
function surfaceRateLimits(acme: AcmeModule): void {
  if (rateLimitsSurfaced) return;
  rateLimitsSurfaced = true;
  (acme.axios.defaults as { acmeSettings?: { retryMaxAttempts: number } }).acmeSettings!.retryMaxAttempts = 0;
  // acme-client's own interceptor reads a response off every error and, on one that has none (a
  // timeout, a refused connection, a name that does not resolve), failed with "Cannot read
  // properties of undefined (reading 'config')": every such order was logged, stored and listed
  // with that for its reason. Put before it (axios runs response interceptors in the order of the
  // list, which it documents as public), this hands it an error it passes on as it is: one with
  // no request config.
  const handlers = (acme.axios.interceptors.response as unknown as { handlers: unknown[] }).handlers;
  handlers.unshift({ fulfilled: undefined, rejected: (err: unknown) => Promise.reject(unansweredError(err)), synchronous: false, runWhen: null });
  acme.axios.interceptors.response.use((response) => {
    if (response.status !== 429) return response;
    const data = response.data as { detail?: unknown } | undefined;
    const detail = typeof data?.detail === 'string' ? data.detail : 'the CA refused the request for a rate limit (HTTP 429)';
    throw new RateLimitedError(detail.replace(/\s+/g, ' '), retryAtOf(response.headers['retry-after'], Date.now()));
  });
}

/** A request the CA never answered, as the order's reason; any other error as it is. */
function unansweredError(err: unknown): unknown {
  if (typeof err !== 'object' || err === null || (err as { response?: unknown }).response !== undefined) return err;
  const { code, message } = err as { code?: unknown; message?: unknown };
  const why = [code, message].filter((part) => typeof part === 'string' && part !== '').join(': ');
  return new Error(`the CA did not answer (${why === '' ? 'no response' : why})`);
}

/** When Retry-After (seconds, or an HTTP date) says to come back; null when it says nothing usable. */
export function retryAtOf(header: unknown, now: number): number | null {
  if (typeof header !== 'string' || header.trim() === '') return null;
  const text = header.trim();
  if (/^\d+$/.test(text)) return now + Number(text) * 1_000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? null : Math.max(now, date);
}

export interface CertificateIssuer {
  issue(name: string): Promise<IssuedCertificate>;
}

/** acme-client's exports, as `import acme from 'acme-client'` gives them. */
type AcmeModule = typeof AcmeClient;

export class AcmeIssuer implements CertificateIssuer {
  private client: Promise<AcmeClient.Client> | undefined;

  /**
   * acme-client is loaded here, not at the top of this file: loading it (axios, its crypto) takes
   * about 0.35 CPU-s, which every process paid at its start (each command, --help too, each of the
   * tests' router and orchestrator processes) although only a router with --acme-directory orders
   * certificates. A missing or broken module now fails the start of such a router, here.
   */
  static async open(options: AcmeIssuerOptions): Promise<AcmeIssuer> {
    const { default: acme } = await import('acme-client');
    return new AcmeIssuer(acme, options);
  }

  private constructor(
    private readonly acme: AcmeModule,
    private readonly options: AcmeIssuerOptions,
  ) {
    // acme-client talks through one axios instance per process; one router has one CA.
    acme.axios.defaults.timeout = options.requestTimeoutMs ?? 30_000;
    surfaceRateLimits(acme);
    if (options.caPem !== undefined) acme.axios.defaults.httpsAgent = new Agent({ ca: options.caPem, keepAlive: true });
  }

  async issue(name: string): Promise<IssuedCertificate> {
    const { acme } = this;
    const client = await this.accountClient();
    const key = await acme.crypto.createPrivateEcdsaKey('P-256');
    // RFC 5280 bounds a common name at 64 characters and Let's Encrypt refuses a CSR over it ("CN
    // was longer than 64 bytes"), while a DNS name may run to 253: a longer one goes in the SAN only.
    const [, csr] = await acme.crypto.createCsr({ ...(name.length <= MAX_COMMON_NAME ? { commonName: name } : {}), altNames: [name] }, key);
    const { vault } = this.options;
    const ttl = this.options.challengeTtlMs ?? 10 * 60_000;
    const certPem = await client.auto({
      csr,
      ...(this.options.email === undefined ? {} : { email: this.options.email }),
      termsOfServiceAgreed: true,
      challengePriority: ['http-01'],
      skipChallengeVerification: true,
      challengeCreateFn: (_authz, challenge, keyAuthorization) => vault.putChallenge(challenge.token, keyAuthorization, ttl),
      challengeRemoveFn: (_authz, challenge) => vault.deleteChallenge(challenge.token),
    });
    const keyPem = key.toString();
    // Stored, it replaces the certificate every router serves for the name: judged first (issued-certificate-check.ts).
    const problem = issuedCertificateProblem(name, certPem, keyPem, Date.now());
    if (problem !== null) throw new Error(`the CA's certificate for ${name} cannot be served: ${problem}; not stored, the one served (if any) stays`);
    const info = acme.crypto.readCertificateInfo(certPem);
    return { name, certPem, keyPem, notBefore: info.notBefore.getTime(), notAfter: info.notAfter.getTime() };
  }

  /** One client per process, on the account key the vault holds (the first router's). */
  private accountClient(): Promise<AcmeClient.Client> {
    const { acme } = this;
    this.client ??= (async () => {
      const fresh = (await acme.crypto.createPrivateEcdsaKey('P-256')).toString();
      const accountKey = await this.options.vault.shareAccountKey(fresh);
      const eab = this.options.externalAccountBinding;
      return new acme.Client({ directoryUrl: this.options.directoryUrl, accountKey, ...(eab === undefined ? {} : { externalAccountBinding: { kid: eab.kid, hmacKey: eab.hmacKey } }) });
    })();
    // A vault that could not be read must not leave a failed promise behind for every later order.
    this.client.catch(() => {
      this.client = undefined;
    });
    return this.client;
  }
}
