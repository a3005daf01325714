/**
 * The admin listener's application (Hono): health and readiness for orchestration systems,
 * and the router's own status. Served only on the admin port (loopback by default), never on
 * the public listeners. The dashboard, admin API and metrics join it (see README roadmap).
 */
import { Hono } from 'hono';

export interface AdminAppOptions {
  readonly ready: () => boolean;
  readonly status: () => unknown;
}

export function createAdminApp(options: AdminAppOptions): Hono {
  const app = new Hono();
  app.get('/healthz', (c) => c.text('ok\n'));
  app.get('/readyz', (c) => (options.ready() ? c.text('ready\n') : c.text('not ready\n', 503)));
  app.get('/api/status', (c) => c.json(options.status() as object));
  app.notFound((c) => c.json({ error: { code: 'not_found', message: 'no such admin endpoint', requestId: '-' } }, 404));
  return app;
}
