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
import { isServable } from './issuance-plan.js';
import { thrownText } from '../core/errors.js';

/** Contexts kept made: the names clients ask for now; a name asked for after it fell out costs one context again (0.16 ms). */
export const MAX_LIVE_CONTEXTS = 10_000;

interface Served {
  readonly certPem: string;
  readonly keyPem: string;
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
  ) {}

  contextFor(servername: string): SecureContext | undefined {
    // The certificate files' rule (certificate-names.ts): case and one trailing dot are ignored.
    // Without it, `shop.example.` would fall through to the files and get the default certificate.
    const lower = servername.toLowerCase();
    const name = lower.endsWith('.') ? lower.slice(0, -1) : lower;
    const served = this.served.get(name);
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

  /** The names served (a certificate that did not load, once asked for, is not). */
  names(): string[] {
    return [...this.served.keys()].filter((name) => this.refused.get(name) !== this.served.get(name)!.certPem);
  }

  update(certificates: ReadonlyMap<string, IssuedCertificate>, wanted: (name: string) => boolean, now: number): void {
    const served = new Map<string, Served>();
    for (const [name, certificate] of certificates) {
      if (!wanted(name) || !isServable(certificate, now)) continue;
      served.set(name, { certPem: certificate.certPem, keyPem: certificate.keyPem });
    }
    this.served = served;
    // Contexts and refusals of names no longer served go; the others stay for as long as their certificate does.
    for (const name of [...this.live.keys()]) if (served.get(name)?.certPem !== this.live.peek(name)!.certPem) this.live.delete(name);
    for (const [name, certPem] of this.refused) if (served.get(name)?.certPem !== certPem) this.refused.delete(name);
  }
}
