/**
 * Kernel settings the router depends on but cannot set itself (Node has no setsockopt), checked
 * once at start so an operator hears about them in the log rather than under attack.
 *
 * net.ipv4.tcp_notsent_lowat: how much not-yet-sent data the kernel takes per socket. Unset (the
 * Linux default), send-buffer autotuning lets one client that stops reading make the router read
 * and encrypt up to 4 MB into its socket; a few hundred such clients a minute cost a core
 * (measured in `npm run bench:hostile`: ~16 ms of router CPU per abandoned connection, 4 ms with
 * 128 KiB). docs/hostile-clients.md explains it.
 */
import { readFile } from 'node:fs/promises';

export const RECOMMENDED_NOTSENT_LOWAT = 131_072;
/** Above this, the kernel effectively takes whatever its send buffer holds. */
const EFFECTIVELY_UNSET = 4 * 1024 * 1024;

/** A warning for the log when the setting is missing or too large; null when it is fine or cannot be read (not Linux). */
export function notsentLowatWarning(value: string | null): string | null {
  if (value === null) return null;
  const bytes = Number(value.trim());
  if (!Number.isFinite(bytes) || bytes <= EFFECTIVELY_UNSET) return null;
  return (
    `net.ipv4.tcp_notsent_lowat is ${value.trim()}: each client that stops reading can make the router encrypt up to 4 MB into its socket; ` +
    `set it to ${RECOMMENDED_NOTSENT_LOWAT} (sysctl, or compose/Kubernetes sysctls; see docs/hostile-clients.md)`
  );
}

export async function readNotsentLowat(path = '/proc/sys/net/ipv4/tcp_notsent_lowat'): Promise<string | null> {
  return readFile(path, 'utf8').catch(() => null);
}
