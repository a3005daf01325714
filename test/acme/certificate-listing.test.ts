import { describe, expect, it } from 'vitest';
import { CertificateListing } from '../../src/acme/certificate-listing.js';
import type { IssuedCertificate, IssueFailure } from '../../src/core/certificate-vault.js';

const DAY = 86_400_000;
const cert = (name: string): IssuedCertificate => ({ name, certPem: 'PEM', keyPem: 'KEY', notBefore: 0, notAfter: 90 * DAY });
const failure = (name: string): IssueFailure => ({ name, attempts: 2, at: DAY, retryAt: 2 * DAY, reason: 'connection refused' });
const renewAt = (c: IssuedCertificate) => c.notAfter - 30 * DAY;
const mapOf = <T extends { name: string }>(items: T[]) => new Map(items.map((i) => [i.name, i]));

describe('CertificateListing: the operators’ listing, a page at a time', () => {
  it('lists domains in name order, each with its certificate and its failed order, and gives a cursor for the next page', () => {
    const certificates = mapOf(['d.example', 'a.example', 'c.example'].map(cert));
    const failures = mapOf(['b.example', 'c.example'].map(failure)); // c has both: a renewal that failed
    const listing = new CertificateListing();
    const first = listing.page(certificates, failures, renewAt, { limit: 2 });
    expect(first.certificates.map((c) => c.name)).toEqual(['a.example']);
    expect(first.failures.map((f) => f.name)).toEqual(['b.example']);
    expect(first.total).toEqual({ domains: 4, certificates: 3, failures: 2 });
    expect(first.next).toBe('b.example');
    const second = listing.page(certificates, failures, renewAt, { limit: 2, after: first.next! });
    expect(second.certificates.map((c) => c.name)).toEqual(['c.example', 'd.example']);
    expect(second.failures.map((f) => f.name)).toEqual(['c.example']);
    expect(second.next).toBeNull();
    // Dates for people, never the key or the certificate.
    expect(second.certificates[0]).toEqual({ name: 'c.example', notBefore: new Date(0).toISOString(), notAfter: new Date(90 * DAY).toISOString(), renewAt: new Date(60 * DAY).toISOString() });
    expect(JSON.stringify(second)).not.toMatch(/PEM|KEY/);
  });

  it('keeps its place while domains come and go: the cursor is a name, not an offset', () => {
    const listing = new CertificateListing();
    const before = mapOf(['a.example', 'b.example', 'c.example', 'd.example'].map(cert));
    const first = listing.page(before, new Map(), renewAt, { limit: 2 });
    expect(first.next).toBe('b.example');
    // a is removed and a0 added before the next page is asked for: neither moves the rest.
    const after = mapOf(['a0.example', 'b.example', 'c.example', 'd.example'].map(cert));
    const second = listing.page(after, new Map(), renewAt, { limit: 2, after: first.next! });
    expect(second.certificates.map((c) => c.name)).toEqual(['c.example', 'd.example']);
    // A cursor between names, or past the last, is fine too.
    expect(listing.page(after, new Map(), renewAt, { limit: 10, after: 'bb' }).certificates.map((c) => c.name)).toEqual(['c.example', 'd.example']);
    expect(listing.page(after, new Map(), renewAt, { limit: 10, after: 'zz' })).toMatchObject({ certificates: [], failures: [], next: null });
  });

  it('holds a page within its bounds however large the vault', () => {
    const many = mapOf(Array.from({ length: 25_000 }, (_, i) => cert(`d${String(i).padStart(5, '0')}.example`)));
    const listing = new CertificateListing();
    const page = listing.page(many, new Map(), renewAt, { limit: 1_000_000 });
    expect(page.certificates).toHaveLength(10_000);
    expect(page.next).toBe('d09999.example');
    expect(listing.page(many, new Map(), renewAt, { limit: 0 }).certificates).toHaveLength(1);
    // Not a whole number (only the admin API checks): the default page, never a page without its cursor.
    for (const limit of [Number.NaN, 2.5]) expect(listing.page(many, new Map(), renewAt, { limit })).toMatchObject({ certificates: { length: 1_000 }, next: 'd00999.example' });
  });
});
