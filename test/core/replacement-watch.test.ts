/**
 * ReplacementWatch's poll of files named through symlinks: a file replaced between the caller's
 * read of it and the watch's first check (a GeoIP database renamed over while it loaded) must not
 * be missed until the next replacement.
 */
import { mkdtemp, rename, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readIdentities, ReplacementWatch } from '../../src/core/replacement-watch.js';
import { until } from '../support/until.js';

const watches: ReplacementWatch[] = [];
afterEach(() => {
  for (const watch of watches.splice(0)) watch.close();
});

/** A file in a directory no watch looks at, named through a symlink in one that is watched. */
async function linkedFile(): Promise<{ target: string; link: string; own: string; replace: () => Promise<void> }> {
  const shared = await mkdtemp(join(tmpdir(), 'edge-watch-'));
  const own = await mkdtemp(join(tmpdir(), 'edge-watch-'));
  const target = join(shared, 'data');
  await writeFile(target, 'old');
  const link = join(own, 'data');
  await symlink(target, link);
  const replace = async () => {
    await writeFile(`${target}.tmp`, 'new');
    await rename(`${target}.tmp`, target);
  };
  return { target, link, own, replace };
}

function watchOf(link: string, own: string, polledBefore?: readonly string[], options: { watched?: (name: string) => boolean; pollMs?: number } = {}): { changes: () => number; looked: (times: number) => Promise<void> } {
  let changes = 0;
  const watch = new ReplacementWatch({
    directories: new Map([[own, options.watched ?? (() => false)]]),
    polled: [link],
    pollMs: options.pollMs ?? 20,
    debounceMs: 10,
    ...(polledBefore === undefined ? {} : { polledBefore }),
    onChange: () => changes++,
    onError: () => undefined,
  });
  watches.push(watch);
  /**
   * Waits for `times` more completed polls, then for any change they reported: its debounce timer
   * was set before the sleep's and is shorter, so it fires first. A fixed sleep could end before a
   * poll had run at all on a loaded machine: a change then went uncounted, and "nothing reported"
   * held without anything having been looked at.
   */
  const looked = async (times: number) => {
    const from = watch.completedChecks;
    await until(`${times} more polls`, () => watch.completedChecks >= from + times);
    await sleep(50);
  };
  return { changes: () => changes, looked };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('ReplacementWatch polling', () => {
  it('reports a file replaced after the caller read it and before the watch began', async () => {
    const { link, own, replace } = await linkedFile();
    const before = await readIdentities([link]);
    await replace(); // while the caller was reading the old version
    const watch = watchOf(link, own, before);
    await watch.looked(3);
    expect(watch.changes()).toBe(1);
  });

  it('without the caller\'s identities, takes the first check as the baseline: such a replacement goes unseen', async () => {
    const { link, own, replace } = await linkedFile();
    await replace();
    const watch = watchOf(link, own);
    await watch.looked(3);
    expect(watch.changes()).toBe(0);
  });

  it('reports a later replacement once, and nothing while the file stays as it is', async () => {
    const { link, own, replace } = await linkedFile();
    const watch = watchOf(link, own, await readIdentities([link]));
    await watch.looked(3);
    expect(watch.changes()).toBe(0);
    await replace();
    await watch.looked(3);
    expect(watch.changes()).toBe(1);
    await watch.looked(3);
    expect(watch.changes()).toBe(1);
  });

  it('reports a replacement of the target made after an event was read, which no event announced', async () => {
    const { target, link, own, replace } = await linkedFile();
    // Events for the link's own name: a provisioning run re-creating it (`ln -sfn`, same target).
    const watch = watchOf(link, own, await readIdentities([link]), { watched: (name) => name === 'data', pollMs: 300 });
    await watch.looked(1);
    await symlink(target, `${link}.tmp`);
    await rename(`${link}.tmp`, link);
    await until('the event reported', () => watch.changes() >= 1);
    // Then, before the next poll, the target is renamed over where no watch looks. Before, the poll
    // after an event reported nothing it found: this replacement went unread until a later change.
    await replace();
    await watch.looked(2);
    expect(watch.changes()).toBe(2);
  });
});
