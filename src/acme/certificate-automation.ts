/**
 * Certificates for custom domains from an ACME CA, put together: which names want one (custom
 * domains, minus those an operator's certificate files cover: those always win), the manager that
 * keeps them issued and renewed, and the TLS contexts the SNI callback serves them from.
 */
import type { CertificateVault, IssuedCertificate } from '../core/certificate-vault.js';
import type { CertificateIssuer } from './acme-issuer.js';
import { CertificateManager, type CertificateEvent } from './certificate-manager.js';
import type { IssuedContexts } from './issued-contexts.js';

export interface CertificateAutomationOptions {
  readonly vault: CertificateVault;
  readonly issuer: CertificateIssuer;
  readonly issued: IssuedContexts;
  /** Every custom domain the router routes (the operator's and the registry's). */
  readonly customDomains: () => Iterable<string>;
  /** True when a certificate file the operator supplied serves the name. */
  readonly coveredByFiles: (name: string) => boolean;
  readonly holder: string;
  readonly onEvent: (event: CertificateEvent) => void;
  readonly checkEveryMs?: number;
}

export class CertificateAutomation {
  readonly manager: CertificateManager;
  private latest: ReadonlyMap<string, IssuedCertificate> = new Map();

  constructor(private readonly options: CertificateAutomationOptions) {
    this.manager = new CertificateManager({
      vault: options.vault,
      issuer: options.issuer,
      holder: options.holder,
      wantedNames: () => this.wantedNames(),
      onCertificates: (certificates) => {
        this.latest = certificates;
        this.serve();
      },
      onEvent: options.onEvent,
      ...(options.checkEveryMs === undefined ? {} : { checkEveryMs: options.checkEveryMs }),
    });
  }

  start(): Promise<void> {
    return this.manager.start();
  }

  /** The operator's certificate files or the custom domains changed: serve accordingly, and order what is now missing. */
  reconsider(): void {
    this.serve();
    this.manager.wake();
  }

  stop(): Promise<void> {
    return this.manager.stop();
  }

  private wantedNames(): string[] {
    const names = new Set<string>();
    for (const name of this.options.customDomains()) if (!this.options.coveredByFiles(name)) names.add(name);
    return [...names];
  }

  private serve(): void {
    const wanted = new Set(this.wantedNames());
    this.options.issued.update(this.latest, (name) => wanted.has(name), Date.now());
  }
}
