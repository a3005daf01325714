/**
 * Caddy for `npm run bench`: the same reverse proxy in front of the same origin, as a Go peer (issue
 * #10 asks for the router to be ahead of it on every row). A Caddyfile with a plain listener and a
 * TLS listener (HTTP/1.1 and HTTP/2 by ALPN, as the router's), no admin endpoint, no automatic
 * HTTPS, no access log (Caddy logs none unless asked), its state kept under the run's own prefix.
 */
import { join } from 'node:path';

export interface CaddyOptions {
  /** Where Caddy keeps its state (XDG dirs) and its config. */
  readonly prefix: string;
  readonly httpPort: number;
  readonly httpsPort: number;
  readonly originPort: number;
  readonly certFile: string;
  readonly keyFile: string;
  /** The name Caddy picks the certificate by when a client's SNI is an address or missing. */
  readonly defaultSni: string;
}

export function caddyfile(options: CaddyOptions): string {
  return `{
	admin off
	auto_https off
	default_sni ${options.defaultSni}
	storage file_system ${join(options.prefix, 'data')}
	servers {
		protocols h1 h2
	}
}

http://:${options.httpPort} {
	bind 127.0.0.1
	reverse_proxy 127.0.0.1:${options.originPort}
}

https://:${options.httpsPort} {
	bind 127.0.0.1
	tls ${options.certFile} ${options.keyFile}
	reverse_proxy 127.0.0.1:${options.originPort}
}
`;
}

/**
 * The command line (through `env`: the state directories, and one Go scheduler thread per core it
 * may use, like every other proxy here pinned to one core).
 */
export function caddyCommand(caddyPath: string, options: CaddyOptions, configFile: string): [string, string[]] {
  return [
    'env',
    [
      'GOMAXPROCS=1',
      `HOME=${options.prefix}`,
      `XDG_DATA_HOME=${join(options.prefix, 'data')}`,
      `XDG_CONFIG_HOME=${join(options.prefix, 'config')}`,
      caddyPath,
      'run',
      '--adapter',
      'caddyfile',
      '--config',
      configFile,
    ],
  ];
}
