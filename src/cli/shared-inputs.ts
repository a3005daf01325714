/** Maps parsed shared flags onto the inputs of resolveSharedSettings. */
import type { SharedInputs } from '../config/shared-settings.js';
import { sourceOf, stringFlag, type ParsedFlags } from './flags.js';

export function sharedInputs(flags: ParsedFlags): SharedInputs {
  const pick = (name: string) => {
    const value = stringFlag(flags, name);
    return value === undefined ? undefined : { value, source: sourceOf(flags, name) };
  };
  const inputs: { -readonly [K in keyof SharedInputs]: SharedInputs[K] } = {};
  const regions = pick('regions');
  const geoip = pick('geoip');
  const zone = pick('zone');
  const trustedProxies = pick('trusted-proxies');
  const ca = pick('orchestrator-ca');
  const clientCert = pick('orchestrator-client-cert');
  const clientKey = pick('orchestrator-client-key');
  if (regions) inputs.regions = regions;
  if (geoip) inputs.geoip = geoip;
  if (zone) inputs.zone = zone;
  if (trustedProxies) inputs.trustedProxies = trustedProxies;
  if (ca || clientCert || clientKey) inputs.orchestratorTls = { ...(ca ? { ca } : {}), ...(clientCert ? { clientCert } : {}), ...(clientKey ? { clientKey } : {}) };
  return inputs;
}
