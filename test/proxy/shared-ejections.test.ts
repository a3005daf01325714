import { describe, expect, it } from 'vitest';
import { OutlierDetector } from '../../src/proxy/outlier-detector.js';
import { SharedEjections, type EjectionStore } from '../../src/proxy/shared-ejections.js';

function recordingStore(): EjectionStore & { writes: string[] } {
  const writes: string[] = [];
  return {
    writes,
    setEjection: async (region, ejection) => void writes.push(ejection === null ? `lift ${region}` : `eject ${region} x${ejection.count}: ${ejection.cause}`),
    appendEvent: async (event) => (writes.push(`event ${event.kind} ${event.region}: ${event.cause}`), true),
  };
}

function ejectFra(outliers: OutlierDetector) {
  for (;;) {
    const ejection = outliers.failure('fra', 'status 502');
    if (ejection !== undefined) return ejection;
  }
}

describe('SharedEjections', () => {
  it('writes an ejection this router decides, with an event, so every router avoids the region', () => {
    const outliers = new OutlierDetector({ regionCount: 5 });
    const store = recordingStore();
    const seen: string[] = [];
    const shared = new SharedEjections({ outliers, store, ejectedInSnapshot: () => false, applyHere: (region, e) => seen.push(`${region} until ${e?.until}`), onEjected: (e) => seen.push(e.region) });
    const ejection = ejectFra(outliers);
    shared.ejected(ejection);
    // Here at once, whatever the store does with it (it may be away).
    expect(seen).toEqual(['fra', `fra until ${ejection.until}`]);
    expect(store.writes).toEqual(['eject fra x1: 5 consecutive failures (last: status 502)', 'event ejected fra: 5 consecutive failures (last: status 502)']);
  });

  it('lifts an ejection when the region reports healthy again: its own, or one another router wrote', () => {
    const outliers = new OutlierDetector({ regionCount: 5 });
    const store = recordingStore();
    const reinstated: string[] = [];
    let inSnapshot = false;
    const shared = new SharedEjections({ outliers, store, ejectedInSnapshot: () => inSnapshot, applyHere: (r, e) => reinstated.push(`${r} ${e === null ? 'lifted here' : 'ejected here'}`), onReinstated: (r) => reinstated.push(r) });
    ejectFra(outliers);
    shared.reportedHealthy('fra');
    expect(outliers.failure('fra', 'x')).toBeUndefined(); // counting from zero again, not ejected
    inSnapshot = true;
    shared.reportedHealthy('nyc'); // ejected by another router only
    expect(reinstated).toEqual(['fra', 'fra lifted here', 'nyc', 'nyc lifted here']);
    expect(store.writes).toEqual(['lift fra', 'lift nyc']);
  });

  it('does nothing for a region nobody ejected', () => {
    const store = recordingStore();
    const shared = new SharedEjections({ outliers: new OutlierDetector({ regionCount: 5 }), store, ejectedInSnapshot: () => false, applyHere: () => store.writes.push('applied here') });
    shared.reportedHealthy('atl');
    expect(store.writes).toEqual([]);
  });
});

describe('SharedEjections and TLS handshake failures', () => {
  it("holds an ejection for a certificate this router refused here only: one router's trust (its CA file, its clock) must not eject regions for every router", () => {
    // A router given the wrong --orchestrator-ca refuses every region's certificate: it ejected 3 of
    // 5 regions in the registry, and every correctly configured router stopped sending there too.
    const outliers = new OutlierDetector({ regionCount: 5 });
    const store = recordingStore();
    const here: string[] = [];
    const shared = new SharedEjections({ outliers, store, ejectedInSnapshot: () => false, applyHere: (region, e) => here.push(`${region} until ${e?.until}`) });
    let ejection;
    while ((ejection = outliers.failure('fra', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE')) === undefined);
    shared.ejected(ejection);
    expect(here).toEqual([`fra until ${ejection.until}`]);
    expect(store.writes.filter((w) => w.startsWith('eject'))).toEqual([]);
  });

  it('still shares an ejection whose last failure was the region refusing connections', () => {
    const outliers = new OutlierDetector({ regionCount: 5 });
    const store = recordingStore();
    const shared = new SharedEjections({ outliers, store, ejectedInSnapshot: () => false, applyHere: () => undefined });
    let ejection;
    while ((ejection = outliers.failure('fra', 'ECONNREFUSED')) === undefined);
    shared.ejected(ejection);
    expect(store.writes.filter((w) => w.startsWith('eject'))).toEqual(['eject fra x1: 5 consecutive failures (last: ECONNREFUSED)']);
  });
});
