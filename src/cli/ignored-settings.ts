/**
 * Settings the operator gave that do nothing with the rest of the configuration: one sentence each,
 * logged as a warning at the start (`setting_ignored`) and printed by `validate`.
 *
 * Warned about rather than refused: each is harmless as it stands, and a base manifest that sets
 * EDGE_REDIRECT_PORT for every router must not stop the one overlay that serves plain HTTP. But
 * silence let an operator believe, for example, that a Prometheus host name was allowed token-less
 * reads when nothing was (--admin-allowed-hosts without --admin-public-reads).
 *
 * Only what the operator gave (a flag or its variable) is named: a default applies whether it
 * matters or not, and a command without one of these flags (`start`) has no source for it.
 */
import { boolFlag, sourceOf, stringFlag, type ParsedFlags } from './flags.js';

/** What the checks need of the resolved settings, beside the flags themselves. */
export interface ResolvedFacts {
  /** Whether the admin token comes from --admin-token-file (the only source that can be replaced). */
  readonly adminTokenFromFile: boolean;
  readonly clientHeaderTimeoutMs: number;
  readonly clientRequestTimeoutMs: number;
}

export function ignoredSettings(flags: ParsedFlags, facts: ResolvedFacts): string[] {
  const given = (name: string) => {
    const source = flags.sources.get(name);
    return source !== undefined && source !== 'default';
  };
  const ignored: string[] = [];
  if (given('admin-allowed-hosts') && !boolFlag(flags, 'admin-public-reads')) {
    ignored.push(`${sourceOf(flags, 'admin-allowed-hosts')} is ignored: it names the hosts token-less reads are answered for, and only ${sourceOf(flags, 'admin-public-reads')} allows such reads; every admin request needs the token`);
  }
  if (given('redirect-port') && stringFlag(flags, 'plain-http') === 'serve') {
    ignored.push(`${sourceOf(flags, 'redirect-port')} is ignored: it is the port of the 308 to HTTPS, and ${sourceOf(flags, 'plain-http')} serve routes plain HTTP instead of redirecting it`);
  }
  if (given('admin-token-overlap') && !facts.adminTokenFromFile) {
    ignored.push(`${sourceOf(flags, 'admin-token-overlap')} is ignored: it is how long a replaced --admin-token-file's token is still taken, and the token is not read from a file (only a restart changes it)`);
  }
  if (given('client-header-timeout') && facts.clientHeaderTimeoutMs > facts.clientRequestTimeoutMs) {
    ignored.push(
      `${sourceOf(flags, 'client-header-timeout')} ${facts.clientHeaderTimeoutMs} ms is longer than ${sourceOf(flags, 'client-request-timeout')} ${facts.clientRequestTimeoutMs} ms, ` +
        `within which the whole request, its head included, must arrive: a request head gets ${facts.clientRequestTimeoutMs} ms`,
    );
  }
  return ignored;
}
