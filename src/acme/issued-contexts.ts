/**
 * The issued certificates as TLS contexts, for the SNI callback. What is served: names still
 * wanted (custom domains no operator certificate covers) with a certificate inside its validity.
 * A context is made when a client first asks for its name, and kept among the most recently used
 * (at most MAX_LIVE_CONTEXTS): made for every certificate at each start, 100,000 custom domains
 * took a worker about 16 s of blocked event loop and 600 MB of native memory (0.16 ms and 6 KB
 * each, measured in review). A certificate whose PEM does not load is reported once, when first
 * asked for, and never served: the client gets what the certificate files give.
 */
import { LRUCache } from 'lru-cache';
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';
import type { IssuedCertificate } from '../core/certificate-vault.js';
import { thrownText } from '../core/errors.js';
import { isServable } from './issuance-plan.js';

/** Contexts kept made: the names clients ask for now; a name asked for after it fell out costs one context again (0.16 ms). */
export const MAX_LIVE_CONTEXTS = 10_000;

interface Served {
  readonly certPem: string;
  readonly keyPem: string;
  readonly notBefore: number;
  readonly notAfter: number;
  /**
   * What was served for the name before a renewal whose certificate is not valid yet (a CA that
   * does not backdate, and this host's clock a little behind its): served until the new one is,
   * rather than the files' default, which does not name the domain.
   */
  readonly earlier?: Served;
}

/** `served` if valid at `now`, else the one it replaced if that is (a renewal not valid yet), else none. */
function validAt(served: Served | undefined, now: number): Served | undefined {
  if (served === undefined) return undefined;
  return isServable(served, now) ? served : validAt(served.earlier, now);
}

export class IssuedContexts {
  /** What is served, by name: the certificate and key its context is made from. */
  private served: ReadonlyMap<string, Served> = new Map();
  /** Contexts made, by name, with the certificate each was made from (a renewal makes a new one). */
  private readonly live = new LRUCache<string, { readonly certPem: string; readonly context: SecureContext }>({ max: MAX_LIVE_CONTEXTS });
  /** Certificates that did not load, by name: reported once, not tried again until replaced. */
  private readonly refused = new Map<string, string>();

  /** `hardening`: the listener's protocol and cipher settings, which every context carries too. */
  constructor(
    private readonly hardening: SecureContextOptions,
    private readonly onBadCertificate: (name: string, reason: string) => void = () => undefined,
    private readonly now: () => number = Date.now,
  ) {}

  contextFor(servername: string): SecureContext | undefined {
    // The certificate files' rule (certificate-names.ts): case and one trailing dot are ignored.
    // Without it, `shop.example.` would fall through to the files and get the default certificate.
    const lower = servername.toLowerCase();
    const name = lower.endsWith('.') ? lower.slice(0, -1) : lower;
    // Validity read at each handshake: the list is refreshed only at each check, which can wait
    // minutes on an order, and a certificate expires (or a renewal becomes valid) when it does.
    const served = validAt(this.served.get(name), this.now());
    if (served === undefined) return undefined;
    const known = this.live.get(name);
    if (known?.certPem === served.certPem) return known.context;
    if (this.refused.get(name) === served.certPem) return undefined;
    try {
      const context = createSecureContext({ ...this.hardening, cert: served.certPem, key: served.keyPem });
      this.live.set(name, { certPem: served.certPem, context });
      return context;
    } catch (err) {
      this.refused.set(name, served.certPem);
      this.onBadCertificate(name, thrownText(err));
      return undefined;
    }
  }

  /** The names served now (a certificate that did not load, once asked for, is not). */
  names(): string[] {
    const now = this.now();
    return [...this.served].filter(([name, entry]) => {
      const served = validAt(entry, now);
      return served !== undefined && this.refused.get(name) !== served.certPem;
    }).map(([name]) => name);
  }

  /**
   * Takes the vault's certificates for the wanted names: each unexpired one is kept, one not valid
   * yet beside the one it renews while that still is.
   */
  update(certificates: ReadonlyMap<string, IssuedCertificate>, wanted: (name: string) => boolean, now: number): void {
    const served = new Map<string, Served>();
    for (const [name, certificate] of certificates) {
      if (!wanted(name) || now >= certificate.notAfter) continue;
      const { certPem, keyPem, notBefore, notAfter } = certificate;
      const before = this.served.get(name);
      const earlier = now >= notBefore ? undefined : before?.certPem === certPem ? before.earlier : validAt(before, now);
      // One step back at most: what the earlier one replaced is not kept.
      served.set(name, { certPem, keyPem, notBefore, notAfter, ...(earlier === undefined ? {} : { earlier: { certPem: earlier.certPem, keyPem: earlier.keyPem, notBefore: earlier.notBefore, notAfter: earlier.notAfter } }) });
    }
    this.served = served;
    // Contexts and refusals of certificates no longer served go; the others stay for as long as their certificate does.
    const kept = (name: string, certPem: string) => {
      const entry = served.get(name);
      return entry?.certPem === certPem || entry?.earlier?.certPem === certPem;
    };
    for (const name of [...this.live.keys()]) if (!kept(name, this.live.peek(name)!.certPem)) this.live.delete(name);
    for (const [name, certPem] of this.refused) if (!kept(name, certPem)) this.refused.delete(name);
  }
}
