import { describe, expect, it } from 'vitest';
import { UpgradesInProgress } from '../../src/ingress/upgrades-in-progress.js';

describe('UpgradesInProgress', () => {
  it('counts an upgrade once however often its end is reported, and wakes the drain at the last', async () => {
    const upgrades = new UpgradesInProgress();
    const first = upgrades.begin();
    const second = upgrades.begin();
    first();
    first(); // a tunnel's line and its close both report the end: counted once
    expect(upgrades.count).toBe(1);
    let idle: boolean | undefined;
    const waiting = upgrades.idle(5_000).then((v) => (idle = v));
    await Promise.resolve();
    expect(idle).toBeUndefined();
    second();
    expect(await waiting).toBe(true);
  });

  it('cuts the open tunnels at the deadline, not the ones already forgotten, and each once', () => {
    const upgrades = new UpgradesInProgress();
    const cut: string[] = [];
    upgrades.cuttable(() => cut.push('a'));
    const forgetB = upgrades.cuttable(() => cut.push('b'));
    forgetB(); // closed on its own
    expect(upgrades.cutAll()).toBe(1);
    expect(upgrades.cutAll()).toBe(0);
    expect(cut).toEqual(['a']);
  });
});
