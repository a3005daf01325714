import { afterEach, describe, expect, it } from 'vitest';
import { OrchestratorConnector, reloadOrchestratorTls } from '../../src/proxy/orchestrator-connector.js';
import type { OrchestratorTls } from '../../src/core/types.js';
import { until } from '../support/until.js';

describe('reloadOrchestratorTls', () => {
  const stops: Array<() => void> = [];
  afterEach(() => {
    for (const stop of stops.splice(0)) stop();
  });

  /** A reload every 10 ms whose reads `next` answers; the events it reported. */
  function reloading(connector: OrchestratorConnector, next: () => Promise<OrchestratorTls | null>) {
    const events: string[] = [];
    let reads = 0;
    const reload = reloadOrchestratorTls(connector, {
      everyMs: 10,
      read: () => {
        reads++;
        return next();
      },
      onEvent: (e) => events.push(e.type === 'reloaded' ? 'reloaded' : `refused: ${e.reason}`),
    });
    stops.push(reload.stop);
    return { events, reads: () => reads };
  }

  it('hands changed settings to the connector, once per change', async () => {
    const connector = new OrchestratorConnector(1_000, { ca: 'A' });
    let files: OrchestratorTls = { ca: 'A' };
    const watch = reloading(connector, async () => files);
    await until('a few reads', () => watch.reads() >= 3);
    expect(watch.events).toEqual([]);
    files = { ca: 'A', cert: 'client B', key: 'key B' };
    await until('taken', () => connector.tls?.cert === 'client B');
    await until('more reads', () => watch.reads() >= 8);
    expect(watch.events).toEqual(['reloaded']);
  });

  it('keeps the settings in use when the files cannot be used, and says so once per reason', async () => {
    const connector = new OrchestratorConnector(1_000, { cert: 'client A', key: 'key A' });
    let failure: string | null = '--orchestrator-client-key: /etc/k.pem: this key does not belong to the certificate in /etc/c.pem';
    const watch = reloading(connector, async () => {
      if (failure !== null) throw new Error(failure);
      return { cert: 'client B', key: 'key B' };
    });
    await until('several reads', () => watch.reads() >= 5);
    expect(connector.tls).toEqual({ cert: 'client A', key: 'key A' });
    expect(watch.events).toEqual([`refused: ${failure}`]);
    failure = null; // the second file has been written
    await until('taken', () => connector.tls?.cert === 'client B');
    expect(watch.events).toEqual([`refused: --orchestrator-client-key: /etc/k.pem: this key does not belong to the certificate in /etc/c.pem`, 'reloaded']);
  });
});
