/**
 * The operators' listing of custom-domain certificates, a page at a time. With thousands of
 * custom domains one answer listing every certificate and failed order runs to megabytes, and a
 * dashboard polling it every 30 s would have the router build that again and again; so the
 * listing is in name order and cut by a cursor (the last name of the previous page), which stays
 * valid while certificates come and go, unlike an offset.
 */
import { DEFAULT_LISTING_LIMIT, MAX_LISTING_LIMIT, type CertificateStatus, type IssuedCertificate, type IssueFailure, type ListingPage } from '../core/certificate-vault.js';

/** The index of the first name after `after` in `sorted` (binary search). */
function firstAfter(sorted: readonly string[], after: string): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (sorted[mid]! <= after) low = mid + 1;
    else high = mid;
  }
  return low;
}

/**
 * Every name with a certificate or a failed order, sorted once per change of either map (the
 * manager replaces its maps when the vault changes, so their identity says when to sort again).
 * The maps are held weakly: a listing nobody asks for again must not keep replaced certificates.
 */
export class CertificateListing {
  private sortedFor:
    | { certificates: WeakRef<ReadonlyMap<string, IssuedCertificate>>; failures: WeakRef<ReadonlyMap<string, IssueFailure>>; names: readonly string[] }
    | undefined;

  page(certificates: ReadonlyMap<string, IssuedCertificate>, failures: ReadonlyMap<string, IssueFailure>, renewAt: (c: IssuedCertificate) => number, page: ListingPage): Omit<CertificateStatus, 'ordersPaused'> {
    const names = this.namesOf(certificates, failures);
    const start = page.after === undefined ? 0 : firstAfter(names, page.after);
    const limit = Number.isInteger(page.limit) ? Math.max(1, Math.min(MAX_LISTING_LIMIT, page.limit)) : DEFAULT_LISTING_LIMIT;
    const end = Math.min(names.length, start + limit);
    const iso = (ms: number) => new Date(ms).toISOString();
    const listedCertificates: Array<CertificateStatus['certificates'][number]> = [];
    const listedFailures: Array<CertificateStatus['failures'][number]> = [];
    for (let i = start; i < end; i++) {
      const name = names[i]!;
      const c = certificates.get(name);
      if (c !== undefined) listedCertificates.push({ name, notBefore: iso(c.notBefore), notAfter: iso(c.notAfter), renewAt: iso(renewAt(c)) });
      const f = failures.get(name);
      if (f !== undefined) listedFailures.push({ name, attempts: f.attempts, at: iso(f.at), retryAt: iso(f.retryAt), reason: f.reason });
    }
    return {
      certificates: listedCertificates,
      failures: listedFailures,
      total: { domains: names.length, certificates: certificates.size, failures: failures.size },
      next: end < names.length ? names[end - 1]! : null,
    };
  }

  private namesOf(certificates: ReadonlyMap<string, IssuedCertificate>, failures: ReadonlyMap<string, IssueFailure>): readonly string[] {
    const sorted = this.sortedFor;
    if (sorted !== undefined && sorted.certificates.deref() === certificates && sorted.failures.deref() === failures) return sorted.names;
    const names = [...new Set([...certificates.keys(), ...failures.keys()])].sort();
    this.sortedFor = { certificates: new WeakRef(certificates), failures: new WeakRef(failures), names };
    return names;
  }
}
