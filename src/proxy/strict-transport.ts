/**
 * Whose Strict-Transport-Security a function's answer carries. Browsers keep the first such field
 * (RFC 6797 §8.1), so a function's own, ahead of the router's, decided HSTS for its host: a
 * function could end it (`max-age=0`) on a platform name. Who owns the name decides instead:
 *
 * - the platform owns the zone: on the zone and any name under it the router's policy alone is
 *   sent, and whatever a function sent is dropped;
 * - a customer owns its custom domain: the function's own field stands (shorter, longer,
 *   `preload`, or ending it: the owner's call), and the router's is added only when it sent none;
 * - with no policy of the router's (none configured, or a plain-HTTP listener, where a browser
 *   ignores the field anyway) the function's passes as it is.
 *
 * The router's own answers (its errors, its refusals) follow the owner too: under the zone, and on
 * a host that named no function, the router's policy; on a custom domain none, for no function
 * spoke in them and the router's would re-enable HSTS an owner had ended with `max-age=0`.
 *
 * Pure; the policies and their answers' fields are made once per handler so that a request only
 * picks one.
 */

import { underZone } from '../core/dns-name.js';

const FIELD = 'strict-transport-security';

export interface StrictTransportPolicy {
  /** The router's Strict-Transport-Security value. */
  readonly value: string;
  /** True on a custom domain: the function's own field, when it sends one, is the answer's. */
  readonly functionDecides: boolean;
  /** The fields of the router's own answers on such a name (frozen): the router's field, or none on a custom domain. */
  readonly routerAnswer: RouterAnswerFields;
}

/** Header fields of one of the router's own answers, made once and shared by every request. */
export type RouterAnswerFields = Readonly<Record<string, string>>;

const NO_FIELDS: RouterAnswerFields = Object.freeze({});

export interface StrictTransportPolicies {
  /** For names under the zone. */
  readonly platform: StrictTransportPolicy;
  /** For custom domains outside the zone. */
  readonly customer: StrictTransportPolicy;
}

/** The two policies for a router's HSTS value, or null when it has none. */
export function strictTransportPolicies(hsts: string | null): StrictTransportPolicies | null {
  if (hsts === null) return null;
  return Object.freeze({
    platform: Object.freeze({ value: hsts, functionDecides: false, routerAnswer: Object.freeze({ [FIELD]: hsts }) }),
    customer: Object.freeze({ value: hsts, functionDecides: true, routerAnswer: NO_FIELDS }),
  });
}

/**
 * The policy for an answer of a function on `host` (normalised: lower-case, no port, no trailing
 * dot): the platform's under the zone, the customer's elsewhere; null when the router has none.
 */
export function strictTransportFor(policies: StrictTransportPolicies | null, host: string, zone: string): StrictTransportPolicy | null {
  if (policies === null) return null;
  return underZone(host, zone) ? policies.platform : policies.customer;
}

/**
 * The fields of the router's own answer (an error, a refusal) to a request whose name's policy is
 * `policy` (strictTransportFor's pick): the router's field under the zone, none on a custom domain,
 * none without a policy. One of the prebuilt objects: nothing is made.
 */
export function routerAnswerHeaders(policy: StrictTransportPolicy | null): RouterAnswerFields {
  return policy === null ? NO_FIELDS : policy.routerAnswer;
}

/**
 * The same for a request refused before it had a policy (at admission): `routedHost` is the
 * normalised name its host resolved to when it named a function (a function that may not exist,
 * be disabled, or have no region for it), undefined when it named none. A host that named none
 * (unknown_host, invalid_host, no host at all) is no customer's: the router's policy.
 */
export function routerAnswerHeadersFor(policies: StrictTransportPolicies | null, routedHost: string | undefined, zone: string): RouterAnswerFields {
  if (policies === null) return NO_FIELDS;
  return routerAnswerHeaders(routedHost === undefined ? policies.platform : strictTransportFor(policies, routedHost, zone));
}

/**
 * Applies `policy` in place to a function's answer fields (flat [name, value, …], names
 * lower-cased as downstreamResponseHeaders gives them): the router's field goes after the
 * function's. The usual answer carries no such field: one pass over the names, then a push, with
 * nothing allocated beyond what the push needs.
 */
export function applyStrictTransport(out: string[], policy: StrictTransportPolicy | null): void {
  if (policy === null) return;
  let first = -1;
  for (let i = 0; i < out.length; i += 2) {
    if (out[i] === FIELD) {
      first = i;
      break;
    }
  }
  if (first !== -1) {
    if (policy.functionDecides) return;
    dropField(out, first);
  }
  out.push(FIELD, policy.value);
}

/** Removes every FIELD pair from `from` on (the first is at `from`), keeping the others' order. */
function dropField(out: string[], from: number): void {
  let kept = from;
  for (let i = from; i < out.length; i += 2) {
    if (out[i] === FIELD) continue;
    out[kept] = out[i]!;
    out[kept + 1] = out[i + 1]!;
    kept += 2;
  }
  out.length = kept;
}
