/**
 * nginx configurations for `npm run bench`: the origin (`return 200 "ok\n"`) and the reference
 * reverse proxy. Pure text templating: every path (pid, error log, temp dirs) lives under the
 * instance's own prefix, so a run never reads or writes /etc/nginx or /var/lib/nginx.
 */

export interface NginxInstance {
  /** Prefix directory of this instance (`nginx -p`): pid, error log and temp dirs go here. */
  readonly prefix: string;
}

export interface OriginOptions extends NginxInstance {
  readonly port: number;
}

export interface ProxyOptions extends NginxInstance {
  readonly httpPort: number;
  readonly httpsPort: number;
  /** TLS with ALPN h2 (nginx 1.22's `listen … ssl http2`). */
  readonly h2Port: number;
  readonly originPort: number;
  readonly certFile: string;
  readonly keyFile: string;
}

/**
 * Node's http server never closes a keep-alive connection after N requests (maxRequestsPerSocket
 * 0), nor does undici upstream; nginx does after 1,000 by default. Lifting the cap keeps every
 * proxy on the same footing and keeps reconnects out of the numbers.
 */
const KEEPALIVE_REQUESTS = 10_000_000;

/** The lines every instance shares: one worker, its own pid/log/temp paths, no access log. */
function preamble({ prefix }: NginxInstance): string {
  // Debian's build compiles absolute temp paths under /var/lib/nginx; point them into the prefix.
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']
    .map((kind) => `    ${kind}_temp_path ${prefix}/${kind}_temp;`)
    .join('\n');
  return `worker_processes 1;
pid ${prefix}/nginx.pid;
worker_rlimit_nofile 40000;
error_log ${prefix}/error.log warn;
events { worker_connections 20000; }
http {
    access_log off;
    default_type text/plain;
    keepalive_timeout 65s;
    keepalive_requests ${KEEPALIVE_REQUESTS};
${temp}
`;
}

/** The origin: `GET /` (any path) answers 200 with the 3-byte body `ok\n`, keep-alive on. */
export function originConfig(options: OriginOptions): string {
  return `${preamble(options)}
    server {
        listen 127.0.0.1:${options.port} default_server backlog=4096;
        location / { return 200 "ok\\n"; }
    }
}
`;
}

/**
 * The reference proxy: plain, TLS (1.2/1.3) and HTTP/2 (TLS, ALPN h2) listeners, `proxy_pass` over HTTP/1.1 to an
 * upstream holding 64 idle keep-alive connections. `Connection ""` drops the client's hop-by-hop
 * header so upstream connections stay open (RFC 9110 §7.6.1).
 */
export function proxyConfig(options: ProxyOptions): string {
  return `${preamble(options)}
    upstream origin {
        server 127.0.0.1:${options.originPort};
        keepalive 64;
        keepalive_requests ${KEEPALIVE_REQUESTS};
    }
    server {
        listen 127.0.0.1:${options.httpPort} default_server backlog=4096;
        listen 127.0.0.1:${options.httpsPort} ssl default_server backlog=4096;
        listen 127.0.0.1:${options.h2Port} ssl http2 default_server backlog=4096;
        ssl_certificate ${options.certFile};
        ssl_certificate_key ${options.keyFile};
        ssl_protocols TLSv1.2 TLSv1.3;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
`;
}

/** The arguments that run one instance in the foreground from its own prefix. */
export function nginxArgs(instance: NginxInstance, confFile: string): string[] {
  // -e: the log for start-up errors, before the configuration's error_log is read (nginx ≥ 1.19.5).
  return ['-p', instance.prefix, '-e', `${instance.prefix}/error.log`, '-c', confFile, '-g', 'daemon off;'];
}
