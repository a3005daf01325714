/**
 * The connector every process that talks to orchestrators uses (a router's pools and prober, a
 * cluster primary's prober, `edge-router probe`), with the orchestrator TLS files read again once
 * a minute: a rotated client certificate (or CA) is taken without a restart, and a bad read keeps
 * the settings in use, logged once per reason (never the files' contents).
 */
import type { Logger } from 'pino';
import { resolveOrchestratorTls } from '../config/orchestrator-tls.js';
import type { SharedSettings } from '../config/shared-settings.js';
import { OrchestratorConnector, reloadOrchestratorTls } from '../proxy/orchestrator-connector.js';

export interface OrchestratorConnection {
  readonly connector: OrchestratorConnector;
  stop(): void;
}

export function connectOrchestrators(settings: Pick<SharedSettings, 'orchestratorTls' | 'orchestratorTlsInputs'>, connectTimeoutMs: number, logger: Pick<Logger, 'info' | 'error'>, reloadEveryMs?: number): OrchestratorConnection {
  const connector = new OrchestratorConnector(connectTimeoutMs, settings.orchestratorTls);
  const inputs = settings.orchestratorTlsInputs;
  if (inputs === null) return { connector, stop: () => undefined };
  const reload = reloadOrchestratorTls(connector, {
    read: () => resolveOrchestratorTls(inputs),
    ...(reloadEveryMs === undefined ? {} : { everyMs: reloadEveryMs }),
    onEvent: (event) => {
      if (event.type === 'reloaded') logger.info({ event: 'orchestrator_tls_reloaded' }, 'new orchestrator TLS settings: new connections use them');
      else logger.error({ event: 'orchestrator_tls_refused', reason: event.reason }, 'cannot use the orchestrator TLS files now; keeping the settings in use');
    },
  });
  return { connector, stop: reload.stop };
}
