/**
 * The issued certificates as TLS contexts, for the SNI callback: a lookup is one map read. Built
 * when the vault's certificates change (a context is made once per certificate, not per
 * connection), holding only names still wanted (custom domains no operator certificate covers)
 * and certificates inside their validity. A certificate whose PEM does not load is left out and
 * reported, never served.
 */
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';
import type { IssuedCertificate } from '../core/certificate-vault.js';
import { isServable } from './issuance-plan.js';

export class IssuedContexts {
  /** What is served, by name, with the certificate each context was made from: an update rebuilds only what changed. */
  private served: ReadonlyMap<string, { readonly certPem: string; readonly context: SecureContext }> = new Map();

  /** `hardening`: the listener's protocol and cipher settings, which every context carries too. */
  constructor(
    private readonly hardening: SecureContextOptions,
    private readonly onBadCertificate: (name: string, reason: string) => void = () => undefined,
  ) {}

  contextFor(servername: string): SecureContext | undefined {
    // The certificate files' rule (certificate-names.ts): case and one trailing dot are ignored.
    // Without it, `shop.example.` would fall through to the files and get the default certificate.
    const lower = servername.toLowerCase();
    return this.served.get(lower.endsWith('.') ? lower.slice(0, -1) : lower)?.context;
  }

  names(): string[] {
    return [...this.served.keys()];
  }

  update(certificates: ReadonlyMap<string, IssuedCertificate>, wanted: (name: string) => boolean, now: number): void {
    const served = new Map<string, { certPem: string; context: SecureContext }>();
    for (const [name, certificate] of certificates) {
      if (!wanted(name) || !isServable(certificate, now)) continue;
      const known = this.served.get(name);
      let context = known?.certPem === certificate.certPem ? known.context : undefined;
      if (context === undefined) {
        try {
          context = createSecureContext({ ...this.hardening, cert: certificate.certPem, key: certificate.keyPem });
        } catch (err) {
          this.onBadCertificate(name, err instanceof Error ? err.message : String(err));
          continue;
        }
      }
      served.set(name, { certPem: certificate.certPem, context });
    }
    this.served = served;
  }
}
