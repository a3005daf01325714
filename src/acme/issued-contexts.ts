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
  private contexts: ReadonlyMap<string, SecureContext> = new Map();
  /** Contexts already made, by certificate: an update rebuilds only what changed. */
  private made = new Map<string, { readonly certPem: string; readonly context: SecureContext }>();

  /** `hardening`: the listener's protocol and cipher settings, which every context carries too. */
  constructor(
    private readonly hardening: SecureContextOptions,
    private readonly onBadCertificate: (name: string, reason: string) => void = () => undefined,
  ) {}

  contextFor(servername: string): SecureContext | undefined {
    return this.contexts.get(servername.toLowerCase());
  }

  names(): string[] {
    return [...this.contexts.keys()];
  }

  update(certificates: ReadonlyMap<string, IssuedCertificate>, wanted: (name: string) => boolean, now: number): void {
    const contexts = new Map<string, SecureContext>();
    const made = new Map<string, { certPem: string; context: SecureContext }>();
    for (const [name, certificate] of certificates) {
      if (!wanted(name) || !isServable(certificate, now)) continue;
      const known = this.made.get(name);
      let context = known?.certPem === certificate.certPem ? known.context : undefined;
      if (context === undefined) {
        try {
          context = createSecureContext({ ...this.hardening, cert: certificate.certPem, key: certificate.keyPem });
        } catch (err) {
          this.onBadCertificate(name, err instanceof Error ? err.message : String(err));
          continue;
        }
      }
      contexts.set(name, context);
      made.set(name, { certPem: certificate.certPem, context });
    }
    this.contexts = contexts;
    this.made = made;
  }
}
