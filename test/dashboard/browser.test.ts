import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DASHBOARD_CONTENT_SECURITY_POLICY, dashboardHtml } from '../../src/dashboard/page.js';
import { SimTopology } from '../../src/sim/topology.js';
import { CHROMIUM_MISSING, launchChromium, saveScreenshot, watchPage } from '../support/browser.js';
import { REDIS_MISSING } from '../support/system-program.js';
import { until } from '../support/until.js';

/**
 * The dashboard in a real browser (Debian's chromium through playwright-core). First against an
 * in-test fake of the admin API contract (token handling, first render before the stream, live
 * updates, reconnection, actions), then against the running multi-process simulation: five
 * regions up, an orchestrator killed, a region drained from the page, a hostile region name.
 * Screenshots go to test-results/.
 */

const HOSTILE_NAME = '<img src=x onerror="window.__pwned=1">Sydney';
const REGION_IDS = ['atl', 'nyc', 'lax', 'fra', 'syd'];

const field = (region: string, name: string) => `[data-region="${region}"] [data-field="${name}"]`;

/** In the page: "<region>:<hook>" for the focused control inside a region card, else null. */
const FOCUSED_CONTROL = `(() => {
  const el = document.activeElement;
  const card = el && el.closest('[data-region]');
  return card ? card.getAttribute('data-region') + ':' + (el.getAttribute('data-action') || el.getAttribute('data-field')) : null;
})()`;

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Waits until the element's whole text is `text`; returns how long that took. */
async function waitForText(page: Page, selector: string, text: string, timeoutMs: number): Promise<number> {
  const started = Date.now();
  await page.locator(selector).filter({ hasText: new RegExp(`^${escapeRegExp(text)}$`) }).first().waitFor({ timeout: timeoutMs });
  return Date.now() - started;
}

async function waitForCards(page: Page, status: string, timeoutMs: number): Promise<number> {
  const started = Date.now();
  await Promise.all(REGION_IDS.map((id) => waitForText(page, field(id, 'status'), status, timeoutMs)));
  return Date.now() - started;
}

describe.skipIf(CHROMIUM_MISSING)('dashboard in chromium', () => {
  let browser: Browser | undefined;

  beforeAll(async () => {
    browser = await launchChromium();
  }, 30_000);

  afterAll(async () => {
    await browser?.close();
  });

  async function open(url: string, viewport = { width: 1280, height: 800 }): Promise<{ context: BrowserContext; page: Page; problems: string[] }> {
    const context = await browser!.newContext({ viewport });
    const page = await context.newPage();
    const { problems } = watchPage(page);
    await page.goto(url);
    return { context, page, problems };
  }

  /**
   * A fake of its own, opened in a page, both closed after `body`: what a test changes on it (writes
   * it refuses or holds, its clock, its certificates) stays out of the shared fake's. `prepare` sets
   * it up before the page first reads it.
   */
  async function withOwnFake(body: (fake: FakeAdminApi, opened: { page: Page; problems: string[] }) => Promise<void>, prepare?: (fake: FakeAdminApi) => void): Promise<void> {
    const fake = await FakeAdminApi.start('fake-token-' + randomBytes(6).toString('hex'));
    let context: BrowserContext | undefined;
    try {
      prepare?.(fake);
      const opened = await open(`${fake.url}/#token=${fake.token}`);
      context = opened.context;
      await body(fake, opened);
    } finally {
      await context?.close();
      await fake.close();
    }
  }

  describe('against a fake of the admin API contract', () => {
    let fake: FakeAdminApi;

    beforeAll(async () => {
      fake = await FakeAdminApi.start('fake-token-' + randomBytes(6).toString('hex'));
    });

    afterAll(async () => {
      await fake?.close();
    });

    it('renders from the API before the stream speaks, then follows the stream within a second', async () => {
      fake.holdStream = true;
      const { context, page, problems } = await open(`${fake.url}/#token=${fake.token}`);
      try {
        await waitForCards(page, 'up', 3_000);
        expect(await page.locator('[data-testid="events"] tbody tr').count()).toBe(fake.events.length);
        expect(await page.locator(field('fra', 'load')).textContent()).toBe('12 / 64 soft / 96 hard');

        // The token left the address bar for sessionStorage and only ever travels as a header.
        expect(page.url()).toBe(`${fake.url}/`);
        expect(await page.evaluate('sessionStorage.getItem("edge-router.admin-token")')).toBe(fake.token);
        expect(fake.requests.length).toBeGreaterThan(0);
        for (const r of fake.requests) {
          expect(r.authorization, r.url).toBe(`Bearer ${fake.token}`);
          expect(r.cookie, r.url).toBeUndefined();
          expect(r.url, r.url).not.toContain(fake.token);
        }

        fake.holdStream = false;
        fake.update('lax', { status: 'down', heartbeatAgeMs: 4200 });
        expect(await waitForText(page, field('lax', 'status'), 'down', 5_000)).toBeLessThan(1_000);
        await waitForText(page, '[data-testid="connection"]', '● Live', 5_000);
        expect(await page.locator('[data-marker="lax"]').getAttribute('data-status')).toBe('down');
        expect(problems).toEqual([]);
      } finally {
        await context.close();
      }
    });

    it('dates an event that is not of the local day, and dates every row anew once the day changes', async () => {
      const pushes = fake.eventsPushes;
      const { context, page, problems } = await open(`${fake.url}/#token=${fake.token}`);
      try {
        const stamp = (cause: string) => page.locator('[data-testid="events"] tbody tr').filter({ hasText: cause }).locator('time');
        await stamp('days ago').waitFor({ timeout: 5_000 });
        const old = fake.events.find((e) => e.cause.includes('days ago'))!;
        expect(await stamp('days ago').getAttribute('datetime')).toBe(new Date(old.at).toISOString());
        // Before, HH:MM:SS alone: read as today's.
        expect(await stamp('days ago').textContent()).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
        // Today's time alone (dated only when the 5 s before this test crossed midnight).
        expect(await stamp('not bold').textContent()).toMatch(/^(\d{4}-\d\d-\d\d )?\d\d:\d\d:\d\d$/);
        // A page left open past midnight, on a router whose log says nothing new (the stream sends
        // it only when it changes): rows shown as today's are dated within a second all the same.
        await until('the stream has sent the log', () => fake.eventsPushes > pushes, 5_000);
        const connections = fake.streamConnections;
        await page.clock.setFixedTime(Date.now() + 86_400_000);
        await stamp('not bold').filter({ hasText: /^\d{4}-\d\d-\d\d / }).waitFor({ timeout: 5_000 });
        for (const time of await page.locator('[data-testid="events"] tbody tr time').all()) expect(await time.textContent()).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
        // The day's step of the wall clock is no silence of the stream: it was not reopened.
        expect(fake.streamConnections).toBe(connections);
        expect(problems).toEqual([]);
      } finally {
        await context.close();
      }
    });

    it('takes a base64 token from the link as it stands, + and = included, and decodes only percent-escapes', async () => {
      const base64 = await FakeAdminApi.start(`b64+token/${randomBytes(6).toString('hex')}==`);
      try {
        for (const link of [`#token=${base64.token}&view=map`, `#view=map&token=${encodeURIComponent(base64.token)}`]) {
          const { context, page, problems } = await open(`${base64.url}/${link}`);
          try {
            await waitForCards(page, 'up', 3_000);
            expect(await page.evaluate('sessionStorage.getItem("edge-router.admin-token")'), link).toBe(base64.token);
            // The rest of the fragment stays as it was; only the token leaves the address bar.
            expect(page.url(), link).toBe(`${base64.url}/#view=map`);
            expect(problems).toEqual([]);
          } finally {
            await context.close();
          }
        }
        expect(base64.requests.map((r) => r.authorization)).toEqual(base64.requests.map(() => `Bearer ${base64.token}`));
      } finally {
        await base64.close();
      }
    });

    it('says when the registry has lost its data and the router routes on what it remembers', async () => {
      const { context, page, problems } = await open(`${fake.url}/#token=${fake.token}`);
      try {
        await page.locator('[data-testid="stale"][data-state="fresh"]').waitFor({ timeout: 5_000 });
        fake.registryStatus = { kind: 'redis', dataLostForMs: 12_000 };
        fake.update('atl', {});
        await page.locator('[data-testid="stale"][data-state="lost"]').waitFor({ timeout: 5_000 });
        expect(await page.locator('[data-testid="stale"]').textContent()).toBe('⚠ Registry (redis) lost its data 12.0 s ago: routing on the last-known state while it is written back');
        fake.registryStatus = {};
        fake.update('atl', {});
        await page.locator('[data-testid="stale"][data-state="fresh"]').waitFor({ timeout: 5_000 });
        expect(problems).toEqual([]);
      } finally {
        fake.registryStatus = {};
        await context.close();
      }
    });

    it('says when the registry has not answered since the router started, not "stale for 0.0 s"', async () => {
      fake.registryStatus = { kind: 'redis', stale: true, staleForMs: 0, contactAt: null, lastFullSyncAt: null };
      const { context, page, problems } = await open(`${fake.url}/#token=${fake.token}`);
      try {
        await page.locator('[data-testid="stale"][data-state="stale"]').waitFor({ timeout: 5_000 });
        expect(await page.locator('[data-testid="stale"]').textContent()).toBe('⚠ Registry (redis) not reached since the router started: no function known yet');
        expect(await page.locator(field('atl', 'registry')).textContent()).toBe('⚠ never reached');
        expect(problems).toEqual([]);
      } finally {
        fake.registryStatus = {};
        await context.close();
      }
    });

    it('says when the event log can no longer be read, over the rows last read, and hides that once it can', async () => {
      // Before, after the first load nothing said it: the rows read before stood as the log's.
      const { context, page, problems } = await open(`${fake.url}/#token=${fake.token}`);
      try {
        await waitForText(page, '[data-testid="connection"]', '● Live', 5_000);
        fake.update('atl', { weight: 2 });
        await page.locator('[data-testid="events"] tbody tr').first().waitFor({ timeout: 5_000 });
        const empty = page.locator('#events-empty');
        fake.eventsUnreadable = true;
        fake.update('nyc', { weight: 3 });
        await waitForText(page, '#events-empty', 'The event log could not be read: the health registry is unreachable (registry_unreachable). The rows below are the last read; new events appear here once it can be.', 5_000);
        expect(await empty.isVisible()).toBe(true);
        expect(await page.locator('[data-testid="events"] tbody tr').count()).toBeGreaterThan(0);
        fake.eventsUnreadable = false;
        fake.update('nyc', { weight: 1 });
        await empty.waitFor({ state: 'hidden', timeout: 5_000 });
        expect(problems).toEqual([]);
      } finally {
        fake.eventsUnreadable = false;
        await context.close();
      }
    });

    it('says when the event log cannot be read, rather than "No events yet.", and shows the events once it can', async () => {
      fake.eventsUnreadable = true;
      const { context, page, problems } = await open(`${fake.url}/#token=${fake.token}`);
      try {
        // The stream's first message clears the page's notice: the panel itself must say it.
        await waitForText(page, '[data-testid="connection"]', '● Live', 5_000);
        const empty = page.locator('#events-empty');
        expect(await empty.isVisible()).toBe(true);
        // From /api/events (with its request id), or from the stream's next tick, which says it too.
        expect(await empty.textContent()).toMatch(/^The event log could not be read: the health registry is unreachable \(registry_unreachable(, request fake)?\)\. Events appear here once it can be\.$/);
        fake.eventsUnreadable = false;
        fake.update('atl', {});
        await page.locator('[data-testid="events"] tbody tr').first().waitFor({ timeout: 5_000 });
        expect(await empty.isHidden()).toBe(true);
        // Reading the events the page was refused is not a problem of the page.
        expect(problems.filter((p) => !p.includes('503'))).toEqual([]);
      } finally {
        fake.eventsUnreadable = false;
        await context.close();
      }
    });

    it('keeps a phone free of horizontal scrolling when the registry badge says the most', async () => {
      fake.registryStatus = { kind: 'redis', dataLostForMs: 3_725_000 };
      const { context, page, problems } = await open(`${fake.url}/#token=${fake.token}`, { width: 390, height: 844 });
      try {
        await page.locator('[data-testid="stale"][data-state="lost"]').waitFor({ timeout: 5_000 });
        expect(await page.evaluate<number>('document.scrollingElement.scrollWidth')).toBeLessThanOrEqual(391);
        const badge = await page.locator('[data-testid="stale"]').boundingBox();
        expect(badge!.x + badge!.width).toBeLessThanOrEqual(390);
        await saveScreenshot(page, 'dashboard-phone-registry-lost.png');
        expect(problems).toEqual([]);
      } finally {
        fake.registryStatus = {};
        await context.close();
      }
    });

    it('puts the region cards before the event list on a phone, and nothing on it is wider than the screen', async () => {
      for (const width of [320, 390]) {
        const { context, page, problems } = await open(`${fake.url}/#token=${fake.token}`, { width, height: 844 });
        try {
          await page.locator('[data-region]').nth(REGION_IDS.length - 1).waitFor({ timeout: 5_000 });
          await page.locator('[data-testid="events"] tbody tr').first().waitFor({ timeout: 5_000 });
          // What an operator on call looks at first: the regions, then what happened.
          const cards = await page.locator('.regions-panel').boundingBox();
          const events = await page.locator('.events-panel').boundingBox();
          expect(cards!.y, `${width} px`).toBeLessThan(events!.y);
          expect(await page.evaluate<boolean>('document.scrollingElement.scrollWidth <= innerWidth'), `${width} px`).toBe(true);
          await saveScreenshot(page, `dashboard-phone-${width}.png`);
          expect(problems).toEqual([]);
        } finally {
          await context.close();
        }
      }
    });

    it('keeps the map\'s markers and labels apart (Atlanta and New York the nearest) at every supported width', async () => {
      const { context, page, problems } = await open(`${fake.url}/#token=${fake.token}`);
      try {
        await page.locator('[data-region]').nth(REGION_IDS.length - 1).waitFor({ timeout: 5_000 });
        for (const width of [320, 390, 600, 768, 959, 960, 1280, 1920]) {
          await page.setViewportSize({ width, height: 900 });
          // The layout runs on the frame after the map's resize is observed.
          await page.evaluate('new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(() => requestAnimationFrame(resolve))))');
          const boxes = await page.evaluate<Array<{ id: string; part: string; x: number; y: number; w: number; h: number }>>(`
            Array.from(document.querySelectorAll('[data-marker]')).flatMap((g) => ['.marker-symbol', '.marker-label-bg'].map((part) => {
              const r = g.querySelector(part).getBoundingClientRect();
              return { id: g.getAttribute('data-marker'), part, x: r.x, y: r.y, w: r.width, h: r.height };
            }))`);
          expect(boxes).toHaveLength(2 * REGION_IDS.length);
          for (const b of boxes) expect(b.w * b.h, `${width} px: ${b.id} ${b.part} drawn`).toBeGreaterThan(0);
          const clashes: string[] = [];
          for (const a of boxes) {
            for (const b of boxes) {
              if (a.id >= b.id) continue;
              const across = Math.min(a.x + a.w, b.x + b.w) - Math.max(a.x, b.x);
              const down = Math.min(a.y + a.h, b.y + b.h) - Math.max(a.y, b.y);
              if (across > 0.5 && down > 0.5) clashes.push(`${a.id} ${a.part} / ${b.id} ${b.part}`);
            }
          }
          expect(clashes.join('; '), `${width} px`).toBe('');
          if (width === 390) await saveScreenshot(page, 'dashboard-phone-map.png');
        }
        expect(problems).toEqual([]);
      } finally {
        await context.close();
      }
    });

    it('says plainly that the router could not be reached and the change was not confirmed when it is gone', async () => {
      const gone = await FakeAdminApi.start('fake-token-' + randomBytes(6).toString('hex'));
      const { context, page, problems } = await open(`${gone.url}/#token=${gone.token}`);
      try {
        await waitForText(page, field('atl', 'drained'), 'no', 5_000);
        await gone.close();
        await page.locator('[data-region="atl"] [data-action="drain"]').click();
        await page.locator('[data-region="atl"] [data-action="confirm-drain"]').click();
        await waitForText(page, field('atl', 'message'), 'Could not reach the router: the change was not confirmed.', 5_000);
        await page.locator('[data-region="nyc"] [data-field="weight-input"]').fill('25');
        await page.locator('[data-region="nyc"] [data-action="weight"]').click();
        await waitForText(page, field('nyc', 'message'), 'Could not reach the router: the change was not confirmed. Weight in force: 100.', 5_000);
        expect(await page.locator(field('nyc', 'weight-input')).inputValue()).toBe('100');
        // Chromium reports the refused connections itself; nothing else may complain.
        expect(problems.filter((p) => !p.includes('ERR_CONNECTION_REFUSED') && !p.includes('ERR_INCOMPLETE_CHUNKED_ENCODING'))).toEqual([]);
      } finally {
        await context.close();
      }
    });

    it('shows the weight in force, and why, after the router refuses a weight', async () => {
      // A fake of its own: the writes it refuses stay out of the shared fake's request log.
      await withOwnFake(async (fake, { page, problems }) => {
        await waitForText(page, field('lax', 'weight'), '100', 5_000);
        fake.refuseWrites = true;
        const input = page.locator(field('lax', 'weight-input'));
        await input.fill('40');
        await input.press('Enter');
        await waitForText(page, field('lax', 'message'), 'Refused: the health registry is unreachable (registry_unreachable, request fake). Weight in force: 100.', 5_000);
        expect(await input.inputValue()).toBe('100');
        // And it follows the weight in force from then on, not the refused one.
        fake.refuseWrites = false;
        await input.blur();
        fake.update('lax', { weight: 70 });
        await waitForText(page, field('lax', 'weight'), '70', 5_000);
        expect(await input.inputValue()).toBe('70');
        // A weight out of range is never sent, and the field says so the same way.
        await input.fill('150');
        await input.press('Enter');
        await waitForText(page, field('lax', 'message'), 'Weight must be a number from 0 to 100. Weight in force: 70.', 5_000);
        expect(await input.inputValue()).toBe('70');
        expect(problems.filter((p) => !p.includes('503'))).toEqual([]);
      });
    });

    it('keeps drawing the live stream when the router\'s clock steps back: snapshots are taken in the order they come', async () => {
      await withOwnFake(async (fake, { page, problems }) => {
        await waitForText(page, field('fra', 'status'), 'up', 5_000);
        await waitForText(page, '[data-testid="connection"]', '● Live', 5_000);
        fake.clockOffsetMs = -60_000;
        fake.update('fra', { status: 'down' });
        await waitForText(page, field('fra', 'status'), 'down', 5_000);
        expect(await page.locator('[data-testid="connection"]').textContent()).toBe('● Live');
        expect(problems).toEqual([]);
      });
    });

    it('shows an action\'s result as old while no live stream runs: nothing in it goes on ageing in view', async () => {
      await withOwnFake(async (fake, { page, problems }) => {
        await waitForText(page, '[data-testid="connection"]', '● Live', 5_000);
        fake.streamsFull = true;
        fake.dropStreams();
        await page.locator('[data-testid="connection"][data-state="reconnecting"]').waitFor({ timeout: 5_000 });
        const input = page.locator(field('lax', 'weight-input'));
        await input.fill('40');
        await input.press('Enter');
        await waitForText(page, field('lax', 'message'), 'Weight of Los Angeles set to 40', 5_000);
        await waitForText(page, field('lax', 'weight'), '40', 5_000);
        expect(await page.locator('body').getAttribute('data-old')).toBe('true');
        expect(await page.locator(field('lax', 'heartbeat')).textContent()).toBe('unknown');
        // The stream cut (as the fake drops it) and refused: what this test does, not a fault of the page.
        expect(problems.filter((p) => !p.includes('429') && !p.includes('ERR_INCOMPLETE_CHUNKED_ENCODING'))).toEqual([]);
      });
    });

    it('keeps the certificate rows, saying they could not be read, when a read fails; no panel only for a router without the endpoint', async () => {
      await withOwnFake(
        async (fake, { page, problems }) => {
          const unreadable = page.locator('[data-testid="certificates-unreadable"]');
          const row = page.locator('[data-testid="certificates"] tr[data-domain="bad.example.net"]');
          await row.waitFor({ timeout: 5_000 });
          expect(await unreadable.isVisible()).toBe(false);
          fake.certificatesStatus = 503;
          await page.evaluate('refreshCertificates()'); // what the page does every 30 s
          await waitForText(page, '[data-testid="certificates-unreadable"]', 'Could not be read just now (no certificates now (unavailable, request fake)): the rows are the last read.', 5_000);
          expect(await row.isVisible()).toBe(true);
          fake.certificatesStatus = 200;
          await page.evaluate('refreshCertificates()');
          await unreadable.waitFor({ state: 'hidden', timeout: 5_000 });
          fake.certificatesStatus = 404;
          await page.evaluate('refreshCertificates()');
          await page.locator('[data-testid="certificates"]').waitFor({ state: 'hidden', timeout: 5_000 });
          expect(problems.filter((p) => !p.includes('503') && !p.includes('404'))).toEqual([]);
        },
        (fake) => {
          fake.certificates = {
            acme: true,
            certificates: [{ name: 'shop.example.net', notBefore: '2026-12-01T00:00:00.000Z', notAfter: '2027-03-01T00:00:00.000Z', renewAt: '2027-01-30T00:00:00.000Z' }],
            failures: [{ name: 'bad.example.net', attempts: 3, at: '2026-12-03T08:00:00.000Z', retryAt: '2026-12-03T08:20:00.000Z', reason: 'connection refused' }],
          };
        },
      );
    });

    it('says too many dashboards are open when the router refuses the live stream 429, and goes live once it can', async () => {
      fake.streamsFull = true;
      const { context, page, problems } = await open(`${fake.url}/#token=${fake.token}`);
      try {
        await page.locator('[data-testid="connection"][data-state="reconnecting"]').waitFor({ timeout: 5_000 });
        expect(await page.locator('[data-testid="connection"]').textContent()).toMatch(/^↻ Reconnecting in \d+ s \(too many dashboards open\)$/);
        expect(await page.locator('#notice').textContent()).toBe(
          'Too many dashboards are open on this router for live updates (32 live streams are open already; close a dashboard and retry). Close one you no longer need: this page tries again by itself.',
        );
        fake.streamsFull = false;
        await waitForText(page, '[data-testid="connection"]', '● Live', 10_000);
        expect(await page.locator('#notice').isHidden()).toBe(true);
        expect(problems.filter((p) => !p.includes('429'))).toEqual([]);
      } finally {
        fake.streamsFull = false;
        await context.close();
      }
    });

    it('shows a region\'s median service time when its orchestrator reports one, and a dash when it does not', async () => {
      const { context, page, problems } = await open(`${fake.url}/#token=${fake.token}`);
      try {
        await waitForText(page, field('atl', 'service'), '—', 5_000);
        fake.update('atl', { serviceMs: 4.25 });
        await waitForText(page, field('atl', 'service'), '4.3 ms', 5_000);
        expect(await page.locator(field('atl', 'p50')).textContent()).toBe('8.5 ms');
        expect(problems).toEqual([]);
      } finally {
        fake.update('atl', { serviceMs: null });
        await context.close();
      }
    });

    it('shows a dash, not 0.0 ms, for the request and service times of a region that has served nothing', async () => {
      const { context, page, problems } = await open(`${fake.url}/#token=${fake.token}`);
      try {
        await waitForText(page, field('nyc', 'p50'), '8.5 ms', 5_000);
        fake.update('nyc', { latencyMs: { p50: null, p99: null }, serviceMs: null });
        await waitForText(page, field('nyc', 'p50'), '—', 5_000);
        expect(await page.locator(field('nyc', 'p99')).textContent()).toBe('—');
        expect(await page.locator(field('nyc', 'service')).textContent()).toBe('—');
        fake.update('nyc', { latencyMs: { p50: 0.4, p99: 12 } });
        await waitForText(page, field('nyc', 'p99'), '12 ms', 5_000);
        expect(await page.locator(field('nyc', 'p50')).textContent()).toBe('0.4 ms');
        expect(problems).toEqual([]);
      } finally {
        fake.update('nyc', { latencyMs: { p50: 8.5, p99: 41 }, serviceMs: null });
        await context.close();
      }
    });

    it('shows each region\'s busiest functions with their idle and total containers, names as text', async () => {
      const { context, page, problems } = await open(`${fake.url}/#token=${fake.token}`);
      try {
        await waitForText(page, field('nyc', 'functions'), '—', 5_000);
        fake.update('nyc', { busiestFunctions: [{ fn: 'acme/api', idle: 1, busy: 2 }, { fn: 'x/<b>web</b>', idle: 0, busy: 1 }] });
        await waitForText(page, field('nyc', 'functions'), 'acme/api 1/3, x/<b>web</b> 0/1', 5_000);
        expect(await page.locator(`${field('nyc', 'functions')} b`).count()).toBe(0);
        expect(problems).toEqual([]);
      } finally {
        fake.update('nyc', { busiestFunctions: [] });
        await context.close();
      }
    });

    it('shows custom-domain certificates and failed orders when ACME is on, data as text, and no panel when it is off', async () => {
      // Counted before the page opens: it may ask as soon as it loads, before open() returns.
      const isCertificates = (url: string) => url.startsWith('/api/certificates?');
      const asked = fake.requests.filter((r) => isCertificates(r.url)).length;
      const off = await open(`${fake.url}/#token=${fake.token}`);
      try {
        await waitForText(off.page, field('nyc', 'status'), 'up', 5_000);
        await until('the page asked for the certificates', () => fake.requests.filter((r) => isCertificates(r.url)).length > asked, 5_000);
        await off.page.evaluate('new Promise((resolve) => setTimeout(resolve, 100))'); // its answer rendered
        expect(await off.page.locator('[data-testid="certificates"]').isVisible()).toBe(false);
      } finally {
        await off.context.close();
      }
      fake.certificates = {
        acme: true,
        certificates: [{ name: 'shop.example.net', notBefore: '2026-12-01T00:00:00.000Z', notAfter: '2027-03-01T00:00:00.000Z', renewAt: '2027-01-30T00:00:00.000Z' }],
        failures: [{ name: '<b>bad</b>.example.net', attempts: 3, at: '2026-12-03T08:00:00.000Z', retryAt: '2026-12-03T08:20:00.000Z', reason: 'connection refused <img src=x onerror="window.__pwned=1">' }],
      };
      const { context, page, problems } = await open(`${fake.url}/#token=${fake.token}`);
      try {
        const row = (name: string) => page.locator(`[data-testid="certificates"] tr[data-domain="${name}"] td`);
        await row('shop.example.net').first().waitFor({ timeout: 5_000 });
        expect(await row('shop.example.net').allTextContents()).toEqual(['shop.example.net', 'issued', '2027-03-01 00:00', 'renew 2027-01-30 00:00', '']);
        expect(await row('<b>bad</b>.example.net').allTextContents()).toEqual(['<b>bad</b>.example.net', 'failing (3)', '—', 'retry 2026-12-03 08:20', 'connection refused <img src=x onerror="window.__pwned=1">']);
        expect(await page.locator('[data-testid="certificates"] b, [data-testid="certificates"] img').count()).toBe(0);
        expect(await page.evaluate('typeof window.__pwned')).toBe('undefined');
        // One page: the whole list is on the last page, so no note about more.
        expect(await page.locator('[data-testid="certificates-more"]').isVisible()).toBe(false);
        expect(await page.locator('[data-testid="certificates-paused"]').isVisible()).toBe(false);
        // The page asks for a page, not for everything.
        expect(fake.requests.filter((r) => isCertificates(r.url)).at(-1)?.url).toBe('/api/certificates?limit=200');
        await saveScreenshot(page, 'dashboard-certificates.png');
        expect(problems).toEqual([]);
      } finally {
        fake.certificates = { acme: false, certificates: [], failures: [] };
        await context.close();
      }
    });

    it('says when the certificates panel shows one page of many, and where the rest is, and when orders are paused', async () => {
      fake.certificates = {
        acme: true,
        certificates: [{ name: 'a.example.net', notBefore: '2026-12-01T00:00:00.000Z', notAfter: '2027-03-01T00:00:00.000Z', renewAt: '2027-01-30T00:00:00.000Z' }],
        failures: [],
        ordersPaused: { name: 'b.example.net', reason: 'too many new orders', since: '2026-12-03T08:00:00.000Z', until: '2026-12-03T08:05:00.000Z', refusals: 1 },
        total: { domains: 5_000, certificates: 4_990, failures: 10 },
        next: 'a.example.net',
      };
      const { context, page, problems } = await open(`${fake.url}/#token=${fake.token}`);
      try {
        const more = page.locator('[data-testid="certificates-more"]');
        await more.waitFor({ state: 'visible', timeout: 5_000 });
        expect(await more.textContent()).toBe('The first 200 of 5000 domains (10 failing in all); the rest: GET /api/certificates?after=a.example.net');
        // And that a CA's rate limit has every router's orders paused.
        expect(await page.locator('[data-testid="certificates-paused"]').textContent()).toBe(
          'Orders paused on every router until 2026-12-03 08:05 UTC: the CA refused the order for b.example.net for a rate limit (too many new orders)',
        );
        expect(problems).toEqual([]);
      } finally {
        fake.certificates = { acme: false, certificates: [], failures: [] };
        await context.close();
      }
    });

    it('reconnects with backoff when the stream drops', async () => {
      const { context, page, problems } = await open(`${fake.url}/#token=${fake.token}`);
      try {
        await waitForText(page, '[data-testid="connection"]', '● Live', 5_000);
        const connections = fake.streamConnections;
        fake.dropStreams();
        await page.locator('[data-testid="connection"][data-state="reconnecting"]').waitFor({ timeout: 5_000 });
        await waitForText(page, '[data-testid="connection"]', '● Live', 4_000);
        expect(fake.streamConnections).toBeGreaterThan(connections);
        fake.update('atl', { status: 'degraded' });
        await waitForText(page, field('atl', 'status'), 'degraded', 5_000);
        expect(await page.locator(field('atl', 'status-icon')).textContent()).toBe('▲');
        // Chromium reports the cut stream itself; nothing else may complain.
        expect(problems.filter((p) => !p.includes('ERR_INCOMPLETE_CHUNKED_ENCODING'))).toEqual([]);
      } finally {
        await context.close();
      }
    });

    it('flags a region ejected after failures, on its card and on the map, while its health still says up', async () => {
      const { context, page, problems } = await open(`${fake.url}/#token=${fake.token}`);
      try {
        // Health up (other tests change the shared fake's regions), then ejected.
        fake.update('fra', { status: 'up', drained: false, ejectedUntil: null });
        await waitForText(page, field('fra', 'status'), 'up', 5_000);
        expect(await page.locator(field('fra', 'eject-flag')).isHidden()).toBe(true);
        fake.update('fra', { ejectedUntil: Date.now() + 60_000, ejectionsTotal: 1 });
        // Routing sends it nothing until the ejection ends: the map must not show it up.
        await page.locator('[data-marker="fra"][data-status="down"]').waitFor({ timeout: 5_000 });
        expect(await page.locator('[data-marker="fra"] text').textContent()).toBe('FRA ✕ ejected');
        expect(await page.locator(field('fra', 'eject-flag')).isVisible()).toBe(true);
        expect(await page.locator(field('fra', 'eject-flag')).textContent()).toBe('✕ ejected');
        expect(await page.locator(field('fra', 'status')).textContent()).toBe('up');
        expect(await page.locator('#announce').textContent()).toBe('Frankfurt (fra) is ejected');

        fake.update('fra', { ejectedUntil: null });
        await page.locator('[data-marker="fra"][data-status="up"]').waitFor({ timeout: 5_000 });
        expect(await page.locator(field('fra', 'eject-flag')).isHidden()).toBe(true);
        expect(await page.locator('#announce').textContent()).toBe('Frankfurt (fra) is no longer ejected');
        expect(problems).toEqual([]);
      } finally {
        fake.update('fra', { ejectedUntil: null, ejectionsTotal: 0 });
        await context.close();
      }
    });

    it('stops presenting the data as current while the stream is lost, and says so until it is back', async () => {
      const { context, page, problems } = await open(`${fake.url}/#token=${fake.token}`);
      try {
        await waitForText(page, '[data-testid="connection"]', '● Live', 5_000);
        await page.locator('[data-testid="stale"][data-state="fresh"]').waitFor({ timeout: 5_000 });
        fake.refuseStreams = true;
        fake.dropStreams();
        await page.locator('[data-testid="connection"][data-state="reconnecting"]').waitFor({ timeout: 5_000 });
        // The page cannot know the registry is fresh, nor that the cards' heartbeats are recent.
        expect(await page.locator('[data-testid="stale"]').getAttribute('data-state')).toBe('unknown');
        expect(await page.locator('[data-testid="stale"]').textContent()).toBe('Registry: unknown');
        expect(await page.locator(field('atl', 'registry')).textContent()).toBe('unknown');
        // "Heartbeat 0.3 s ago" would stand for as long as the stream is lost, read as current.
        expect(await page.locator(field('atl', 'heartbeat')).textContent()).toBe('unknown');
        await saveScreenshot(page, 'dashboard-stream-lost.png');
        expect(await page.locator('[data-testid="updated"]').textContent()).toMatch(/^⚠ Not updated since \d\d:\d\d:\d\d$/);
        expect(await page.locator('body').getAttribute('data-old')).toBe('true');

        fake.refuseStreams = false;
        await waitForText(page, '[data-testid="connection"]', '● Live', 10_000);
        await page.locator('[data-testid="stale"][data-state="fresh"]').waitFor({ timeout: 5_000 });
        expect(await page.locator('[data-testid="updated"]').textContent()).toMatch(/^Updated \d\d:\d\d:\d\d$/);
        expect(await page.locator('body').getAttribute('data-old')).toBe('false');
        expect(await page.locator(field('atl', 'registry')).textContent()).toBe('✓ fresh');
        expect(await page.locator(field('atl', 'heartbeat')).textContent()).toMatch(/^\d+\.\d s ago$/);
        // Chromium reports the cut stream and the refused ones itself; nothing else may complain.
        expect(problems.filter((p) => !p.includes('ERR_INCOMPLETE_CHUNKED_ENCODING') && !p.includes('503'))).toEqual([]);
      } finally {
        fake.refuseStreams = false;
        await context.close();
      }
    });

    it('reconnects to a router that is slow to answer once the page has gone without updates for a while', async () => {
      const { context, page, problems } = await open(`${fake.url}/#token=${fake.token}`);
      try {
        await waitForText(page, '[data-testid="connection"]', '● Live', 5_000);
        fake.refuseStreams = true;
        fake.dropStreams();
        await page.locator('[data-testid="connection"][data-state="reconnecting"]').waitFor({ timeout: 5_000 });
        // Longer than the page's 5 s silence bound without a message: a router restarting, say.
        await page.evaluate('new Promise((resolve) => setTimeout(resolve, 6_000))');
        // Back, but busy (an incident): the stream's head takes 2 s, within the silence bound.
        fake.streamDelayMs = 2_000;
        fake.refuseStreams = false;
        await waitForText(page, '[data-testid="connection"]', '● Live', 25_000);
        expect(await page.locator('body').getAttribute('data-old')).toBe('false');
        expect(problems.filter((p) => !p.includes('ERR_INCOMPLETE_CHUNKED_ENCODING') && !p.includes('503'))).toEqual([]);
      } finally {
        fake.streamDelayMs = 0;
        fake.refuseStreams = false;
        await context.close();
      }
    }, 40_000);

    it('announces every region that changed in one update, not only the last', async () => {
      const { context, page, problems } = await open(`${fake.url}/#token=${fake.token}`);
      try {
        await waitForText(page, '[data-testid="connection"]', '● Live', 5_000);
        fake.update('lax', { status: 'up' });
        await waitForText(page, field('lax', 'status'), 'up', 5_000);
        // A partition takes two regions down between two snapshots.
        fake.updateMany({ lax: { status: 'down' }, fra: { drained: true } });
        await waitForText(page, field('fra', 'drained'), 'yes', 5_000);
        expect(await page.locator('#announce').textContent()).toBe('Los Angeles (lax) is now down. Frankfurt (fra) is drained');
        expect(problems).toEqual([]);
      } finally {
        fake.updateMany({ lax: { status: 'up' }, fra: { drained: false } });
        await context.close();
      }
    });

    it('keeps the keyboard focus, visible, on the button that sent an action while the router answers and after', async () => {
      // A fake of its own: its writes stay out of the shared fake's request log.
      await withOwnFake(async (fake, { page, problems }) => {
        // The focused control, and whether the browser draws its focus ring.
        const focused = () => page.evaluate<string>(`(() => {
          const el = document.activeElement;
          const card = el && el.closest('[data-region]');
          return card ? card.getAttribute('data-region') + ':' + (el.getAttribute('data-action') || el.getAttribute('data-field')) + ':' + el.matches(':focus-visible') : String(el && el.tagName);
        })()`);
        await waitForText(page, field('nyc', 'drained'), 'no', 5_000);
        // Held until the keys below have landed: they land while the drain is still being sent.
        let releaseWrites = fake.holdWrites();
        await page.locator('[data-region="nyc"] [data-action="drain"]').focus();
        await page.keyboard.press('Space');
        await page.keyboard.press('Space');
        await waitForText(page, field('nyc', 'message'), 'Sending…', 5_000);
        expect(await focused()).toMatch(/^nyc:(drain|confirm-drain):true$/);
        // A key pressed while it is sent neither sends it again nor asks anything.
        await page.keyboard.press('Enter');
        await saveScreenshot(page, 'dashboard-action-sending.png');
        releaseWrites();
        await waitForText(page, field('nyc', 'message'), 'New York drained', 10_000);
        // The message is shown as the router answers; the button turns into Undrain once the
        // dashboard has read the regions again (runAction), a moment later: the focus must follow it.
        await page.locator('[data-region="nyc"] [data-action="undrain"]:not([aria-disabled])').waitFor({ timeout: 10_000 });
        expect(await focused()).toBe('nyc:undrain:true');
        expect(fake.requests.filter((r) => r.method !== 'GET' && r.url.includes('/nyc/')).map((r) => r.url)).toEqual(['/api/regions/nyc/drain']);

        await page.keyboard.press('Tab');
        await page.keyboard.press('Tab');
        expect(await focused()).toBe('nyc:weight:true');
        releaseWrites = fake.holdWrites();
        await page.keyboard.press('Enter');
        await waitForText(page, field('nyc', 'message'), 'Sending…', 5_000);
        expect(await focused()).toBe('nyc:weight:true');
        releaseWrites();
        await waitForText(page, field('nyc', 'message'), 'Weight of New York set to 100', 10_000);
        expect(await focused()).toBe('nyc:weight:true');
        expect(problems).toEqual([]);
      });
    }, 30_000);

    it('gives up on an action the router never answers, says it was not confirmed, and takes presses again', async () => {
      // A network that drops packets without a word: the card sat at "Sending…", refusing every
      // press, until the OS gave up on the connection minutes later.
      await withOwnFake(async (fake, { page }) => {
        await waitForText(page, field('nyc', 'drained'), 'no', 5_000);
        const releaseWrites = fake.holdWrites();
        try {
          await page.locator(`[data-region="nyc"] [data-action="weight"]`).focus();
          await page.keyboard.press('Enter');
          await waitForText(page, field('nyc', 'message'), 'Sending…', 5_000);
          const sentAt = Date.now();
          // Then what the card says of the weight in force (runAction's `failed`).
          await page.locator(field('nyc', 'message')).filter({ hasText: /^Could not reach the router: the change was not confirmed\./ }).waitFor({ timeout: 20_000 });
          expect(Date.now() - sentAt).toBeGreaterThan(5_000);
        } finally {
          releaseWrites();
        }
        // Not busy any more: the next press is sent.
        await page.keyboard.press('Enter');
        await waitForText(page, field('nyc', 'message'), 'Weight of New York set to 100', 10_000);
      });
    }, 40_000);

    it('sends operator actions with the token and shows their effect', async () => {
      const { context, page, problems } = await open(`${fake.url}/#token=${fake.token}`);
      try {
        await waitForText(page, field('fra', 'drained'), 'no', 5_000);
        // Every control is reachable from the keyboard, in reading order.
        const reached: string[] = [];
        for (let i = 0; i < 40 && reached.length < 15; i++) {
          await page.keyboard.press('Tab');
          const hook = await page.evaluate<string | null>(FOCUSED_CONTROL);
          if (hook !== null) reached.push(hook);
        }
        expect(reached).toEqual(REGION_IDS.flatMap((id) => [`${id}:drain`, `${id}:weight-input`, `${id}:weight`]));

        await page.locator('[data-region="fra"] [data-action="drain"]').click();
        expect(fake.requests.filter((r) => r.method !== 'GET')).toEqual([]);
        await page.locator('[data-region="fra"] [data-action="confirm-drain"]').click();
        await waitForText(page, field('fra', 'drained'), 'yes', 5_000);
        await page.locator('[data-region="fra"] [data-action="undrain"]').waitFor({ timeout: 5_000 });
        expect(await page.locator(field('fra', 'drain-flag')).isVisible()).toBe(true);
        expect(await page.locator('[data-marker="fra"]').getAttribute('data-status')).toBe('draining');

        await page.locator('[data-region="nyc"] [data-field="weight-input"]').fill('25');
        await page.locator('[data-region="nyc"] [data-action="weight"]').click();
        await waitForText(page, field('nyc', 'weight'), '25', 5_000);

        const actions = fake.requests.filter((r) => r.method !== 'GET');
        expect(actions.map((r) => [r.method, r.url, r.body])).toEqual([
          ['POST', '/api/regions/fra/drain', ''],
          ['PUT', '/api/regions/nyc/weight', '{"weight":25}'],
        ]);
        for (const r of actions) expect(r.authorization).toBe(`Bearer ${fake.token}`);

        await page.locator('[data-region="nyc"] [data-field="weight-input"]').fill('150');
        await page.locator('[data-region="nyc"] [data-action="weight"]').click();
        await waitForText(page, field('nyc', 'message'), 'Weight must be a number from 0 to 100. Weight in force: 25.', 5_000);
        expect(fake.requests.filter((r) => r.method !== 'GET')).toHaveLength(2);
        expect(problems).toEqual([]);
      } finally {
        await context.close();
      }
    });

    it('asks to confirm a drain with a second click (a double click is not one; Esc cancels), and undrains at once', async () => {
      const { context, page, problems } = await open(`${fake.url}/#token=${fake.token}`);
      const writes = () => fake.requests.filter((r) => r.method !== 'GET').map((r) => r.url);
      const before = writes().length;
      try {
        await waitForText(page, field('atl', 'drained'), 'no', 5_000);
        const drain = page.locator('[data-region="atl"] [data-action="drain"]');
        await drain.click();
        const confirm = page.locator('[data-region="atl"] [data-action="confirm-drain"]');
        await waitForText(page, '[data-region="atl"] [data-action="confirm-drain"]', 'Confirm drain', 5_000);
        expect(await confirm.getAttribute('aria-label')).toBe('Confirm drain of Atlanta');
        expect(await page.locator(field('atl', 'message')).textContent()).toBe('Drain Atlanta? It takes no new traffic until undrained. Click again to confirm (Esc cancels).');
        // Still asking after the stream's next snapshots have been drawn.
        fake.update('atl', { inFlight: 1 });
        await waitForText(page, field('atl', 'load'), '1 / 64 soft / 96 hard', 5_000);
        expect(await confirm.textContent()).toBe('Confirm drain');

        // Esc takes the question back; nothing was sent.
        await confirm.press('Escape');
        await drain.waitFor({ timeout: 5_000 });
        expect(await drain.textContent()).toBe('Drain');
        expect(await page.locator(field('atl', 'message')).textContent()).toBe('');

        // A held Enter asks once; the clicks its key repeats make confirm nothing.
        await drain.focus();
        for (let i = 0; i < 6; i += 1) await page.keyboard.down('Enter');
        await page.keyboard.up('Enter');
        await confirm.waitFor({ timeout: 5_000 });
        await page.evaluate('new Promise((resolve) => setTimeout(resolve, 200))'); // a write sent would be logged by now
        expect(writes().slice(before)).toEqual([]);
        await confirm.press('Escape');
        await drain.waitFor({ timeout: 5_000 });

        // A double click asks, and its second click confirms nothing.
        await drain.dblclick();
        await confirm.waitFor({ timeout: 5_000 });
        expect(writes().slice(before)).toEqual([]);

        // From the keyboard: Enter on the same, still focused button confirms.
        await confirm.press('Enter');
        await waitForText(page, field('atl', 'drained'), 'yes', 5_000);
        await waitForText(page, field('atl', 'message'), 'Atlanta drained', 5_000);
        // Undrain (the undo, in the same place) takes one click.
        await page.locator('[data-region="atl"] [data-action="undrain"]').click();
        await waitForText(page, field('atl', 'drained'), 'no', 5_000);
        expect(writes().slice(before)).toEqual(['/api/regions/atl/drain', '/api/regions/atl/undrain']);
        expect(problems).toEqual([]);
      } finally {
        fake.update('atl', { drained: false, inFlight: 0 });
        await context.close();
      }
    });

    it('says when a write is committed but not every worker routes by it yet (x-edge-applied: pending)', async () => {
      const { context, page, problems } = await open(`${fake.url}/#token=${fake.token}`);
      try {
        await waitForText(page, field('lax', 'drained'), 'no', 5_000);
        fake.applied = 'pending';
        await page.locator('[data-region="lax"] [data-action="drain"]').click();
        await page.locator('[data-region="lax"] [data-action="confirm-drain"]').click();
        await waitForText(page, field('lax', 'message'), 'Los Angeles drained; not every worker routes by it yet', 5_000);
        fake.applied = 'everywhere';
        await page.locator('[data-region="lax"] [data-action="undrain"]').click();
        await waitForText(page, field('lax', 'message'), 'Los Angeles undrained', 5_000);
        expect(problems).toEqual([]);
      } finally {
        fake.applied = 'everywhere';
        fake.update('lax', { drained: false });
        await context.close();
      }
    });

    it('asks for the token when it is rejected, and takes a pasted one', async () => {
      const { context, page } = await open(`${fake.url}/#token=wrong`);
      try {
        await page.locator('[data-testid="auth"][data-reason="invalid"]').waitFor({ state: 'visible', timeout: 5_000 });
        expect(await page.locator('[data-testid="connection"]').textContent()).toBe('🔒 Token invalid');
        expect(await page.locator('[data-region]').count()).toBe(0);
        expect(await page.evaluate('sessionStorage.getItem("edge-router.admin-token")')).toBeNull();

        await page.getByLabel('Admin token', { exact: true }).fill(fake.token);
        await page.getByRole('button', { name: 'Use token' }).click();
        await page.locator('[data-region]').nth(4).waitFor({ timeout: 5_000 });
        expect(await page.locator('[data-region]').count()).toBe(5);
        expect(await page.locator('[data-testid="auth"]').isHidden()).toBe(true);
      } finally {
        await context.close();
      }
    });

    it('moves the keyboard focus to the token field, which says why, when the token in use is rotated away', async () => {
      const rotated = await FakeAdminApi.start('fake-token-' + randomBytes(6).toString('hex'));
      const { context, page, problems } = await open(`${rotated.url}/#token=${rotated.token}`);
      try {
        await waitForText(page, '[data-testid="connection"]', '● Live', 5_000);
        await page.locator('[data-region="atl"] [data-action="drain"]').focus();
        rotated.token = 'fake-token-' + randomBytes(6).toString('hex');
        rotated.dropStreams();
        await page.locator('[data-testid="auth"][data-reason="invalid"]').waitFor({ state: 'visible', timeout: 5_000 });
        // The focused control went with the dashboard: the keyboard's place is the field that asks.
        expect(await page.evaluate('document.activeElement && document.activeElement.id')).toBe('token-input');
        await saveScreenshot(page, 'dashboard-token-rotated.png');
        // And a screen reader reads why with the field, not only "Admin token".
        expect(await page.evaluate(`(() => {
          const input = document.getElementById('token-input');
          return (input.getAttribute('aria-describedby') || '').split(' ').map((id) => document.getElementById(id)?.textContent).join(' ');
        })()`)).toBe('The admin token was rejected (missing, wrong or rotated). Paste a valid token to continue.');
        expect(problems.filter((p) => !p.includes('401') && !p.includes('ERR_INCOMPLETE_CHUNKED_ENCODING'))).toEqual([]);
      } finally {
        await context.close();
        await rotated.close();
      }
    });

    it('takes a #token= link opened in a tab that already shows the page: out of the address bar, and used', async () => {
      // A fragment-only change does not reload the page: the script must notice it (hashchange).
      const { context, page, problems } = await open(`${fake.url}/`);
      try {
        await page.locator('[data-testid="auth"][data-reason="required"]').waitFor({ state: 'visible', timeout: 5_000 });
        await page.goto(`${fake.url}/#token=${fake.token}&view=map`);
        await page.locator('[data-region]').nth(4).waitFor({ timeout: 5_000 });
        await waitForText(page, '[data-testid="connection"]', '● Live', 5_000);
        expect(page.url()).toBe(`${fake.url}/#view=map`);
        expect(await page.evaluate('sessionStorage.getItem("edge-router.admin-token")')).toBe(fake.token);
        expect(problems).toEqual([]);

        // A different token in the same tab replaces the one in use (here: a wrong one, so the page asks).
        await page.goto(`${fake.url}/#token=wrong-${fake.token}`);
        await page.locator('[data-testid="auth"][data-reason="invalid"]').waitFor({ state: 'visible', timeout: 5_000 });
        expect(page.url()).toBe(`${fake.url}/`);
        expect(await page.locator('[data-region]').count()).toBe(0);
      } finally {
        await context.close();
      }
    });

    it('asks for the token again when the link carries one that no Authorization header can (a copied "…")', async () => {
      const requestsBefore = fake.requests.length;
      const { context, page, problems } = await open(`${fake.url}/#token=${fake.token.slice(0, 8)}%E2%80%A6`);
      try {
        await page.locator('[data-testid="auth"][data-reason="invalid"]').waitFor({ state: 'visible', timeout: 5_000 });
        expect(await page.locator('[data-testid="connection"]').textContent()).toBe('🔒 Token invalid');
        expect(page.url()).toBe(`${fake.url}/`);
        // Not kept for the next reload, and no request went out with it.
        expect(await page.evaluate('sessionStorage.getItem("edge-router.admin-token")')).toBeNull();
        expect(fake.requests.length).toBe(requestsBefore);

        await page.getByLabel('Admin token', { exact: true }).fill('two words');
        await page.getByRole('button', { name: 'Use token' }).click();
        await page.locator('[data-testid="auth"][data-reason="invalid"]').waitFor({ state: 'visible', timeout: 5_000 });
        expect(fake.requests.length).toBe(requestsBefore);
        expect(problems).toEqual([]);
      } finally {
        await context.close();
      }
    });
  });

  describe.skipIf(REDIS_MISSING)('of a running simulation', () => {
    const token = `test-token-${randomBytes(12).toString('hex')}`;
    let topology: SimTopology | undefined;
    let base = '';
    let laptop: { context: BrowserContext; page: Page; problems: string[] } | undefined;

    const adminFetch = (path: string, init: RequestInit = {}) =>
      fetch(`${base}${path}`, { ...init, headers: { authorization: `Bearer ${token}`, ...init.headers } });

    beforeAll(async () => {
      const started = Date.now();
      topology = await SimTopology.start({ root: process.cwd(), adminToken: token, names: { syd: HOSTILE_NAME } });
      base = `http://127.0.0.1:${topology.adminPort}`;
      console.log(`simulation up in ${Date.now() - started} ms`);
    }, 45_000);

    afterAll(async () => {
      await laptop?.context.close();
      await topology?.stop();
    });

    it('shows five regions up on the first render', async () => {
      laptop = await open(`${base}/#token=${token}`);
      const ms = await waitForCards(laptop.page, 'up', 5_000);
      console.log(`five regions up in the page after ${ms} ms`);
      expect(laptop.page.url()).toBe(`${base}/`);
      // Fresh as soon as the router hears from Redis (a loaded machine may delay a poll past the
      // 1.5 s staleness bound for a moment: that is the badge working, not failing).
      await laptop.page.locator('[data-testid="stale"][data-state="fresh"]').waitFor({ timeout: 5_000 });
      expect(await laptop.page.locator('[data-marker]').count()).toBe(5);
    }, 15_000);

    it('renders a hostile region name as text', async () => {
      const { page } = laptop!;
      expect(await page.locator(field('syd', 'name')).textContent()).toBe(HOSTILE_NAME);
      expect(await page.locator(`${field('syd', 'name')} img`).count()).toBe(0);
      expect(await page.locator('img').count()).toBe(0);
      expect(await page.evaluate('typeof window.__pwned')).toBe('undefined');
    });

    it('turns a killed region down within 5 s', async () => {
      const { page } = laptop!;
      const killedAt = Date.now();
      await topology!.killOrchestrator('lax');
      await waitForText(page, field('lax', 'status'), 'down', 7_000);
      const ms = Date.now() - killedAt;
      console.log(`lax shown down ${ms} ms after its orchestrator was killed`);
      expect(ms).toBeLessThan(5_000);
      expect(await page.locator('[data-marker="lax"]').getAttribute('data-status')).toBe('down');
      expect(await page.locator(field('lax', 'status-icon')).textContent()).toBe('✕');
    }, 10_000);

    it('drains a region from the page, and the registry agrees', async () => {
      const { page } = laptop!;
      const clickedAt = Date.now();
      await page.locator('[data-region="fra"] [data-action="drain"]').click();
      await page.locator('[data-region="fra"] [data-action="confirm-drain"]').click();
      await waitForText(page, field('fra', 'drained'), 'yes', 2_000);
      const ms = Date.now() - clickedAt;
      console.log(`fra shown drained ${ms} ms after the click`);
      expect(ms).toBeLessThan(2_000);
      await page.locator('[data-region="fra"] [data-action="undrain"]').waitFor({ timeout: 1_000 });

      const res = await adminFetch('/api/regions');
      expect(res.status).toBe(200);
      const body = (await res.json()) as { regions: { id: string; drained: boolean; status: string }[] };
      expect(body.regions.find((r) => r.id === 'fra')).toMatchObject({ drained: true });
      // Health and the operator's drain are kept apart: the card flags the drain, the map shows it.
      expect(await page.locator(field('fra', 'drain-flag')).isVisible()).toBe(true);
      expect(await page.locator('[data-marker="fra"]').getAttribute('data-status')).toBe('draining');

      await waitForText(page, '[data-testid="connection"]', '● Live', 1_000);
      // The drain is in the recent-events panel (the log is pushed at most a second later).
      await page.locator('[data-testid="events"] tbody tr').filter({ hasText: 'drained' }).filter({ hasText: 'fra' }).first().waitFor({ timeout: 3_000 });
      await saveScreenshot(page, 'dashboard-laptop.png');
      expect(laptop!.problems).toEqual([]);
    }, 10_000);

    it('undrains and sets a weight from the page, and the registry agrees', async () => {
      const { page } = laptop!;
      await page.locator('[data-region="fra"] [data-action="undrain"]').click();
      await waitForText(page, field('fra', 'drained'), 'no', 2_000);
      expect(await page.locator(field('fra', 'drain-flag')).isHidden()).toBe(true);

      await page.locator('[data-region="nyc"] [data-field="weight-input"]').fill('2.5');
      await page.locator('[data-region="nyc"] [data-field="weight-input"]').press('Enter');
      await waitForText(page, field('nyc', 'weight'), '2.5', 2_000);

      const body = (await (await adminFetch('/api/regions')).json()) as { regions: { id: string; drained: boolean; weight: number }[] };
      expect(body.regions.find((r) => r.id === 'fra')).toMatchObject({ drained: false });
      expect(body.regions.find((r) => r.id === 'nyc')).toMatchObject({ weight: 2.5 });
      expect(laptop!.problems).toEqual([]);
    }, 10_000);

    it('shows the token-required state and no data without a token', async () => {
      const { context, page } = await open(`${base}/`);
      try {
        await page.locator('[data-testid="auth"][data-reason="required"]').waitFor({ state: 'visible', timeout: 3_000 });
        expect(await page.locator('[data-testid="connection"]').textContent()).toBe('🔒 Token required');
        expect(await page.locator('[data-region]').count()).toBe(0);
        expect(await page.locator('#dashboard').isHidden()).toBe(true);
        expect(await page.getByLabel('Admin token', { exact: true }).isVisible()).toBe(true);
      } finally {
        await context.close();
      }
    });

    it('fits a phone in one column without horizontal scrolling', async () => {
      const { context, page, problems } = await open(`${base}/#token=${token}`, { width: 390, height: 844 });
      try {
        await waitForText(page, field('atl', 'status'), 'up', 5_000);
        await waitForText(page, field('lax', 'status'), 'down', 5_000);
        const scrollWidth = await page.evaluate<number>('document.scrollingElement.scrollWidth');
        expect(scrollWidth).toBeLessThanOrEqual(391);
        const boxes = await Promise.all(REGION_IDS.map((id) => page.locator(`[data-region="${id}"]`).boundingBox()));
        const lefts = new Set(boxes.map((b) => Math.round(b!.x)));
        expect(lefts.size).toBe(1);
        for (const b of boxes) expect(b!.x + b!.width).toBeLessThanOrEqual(390);
        await saveScreenshot(page, 'dashboard-phone.png');
        expect(problems).toEqual([]);
      } finally {
        await context.close();
      }
    }, 15_000);
  });
});

/* ---------- a fake of the admin API contract, for the page's own behaviour ---------- */

interface FakeRegion {
  id: string;
  name: string;
  lat: number;
  lon: number;
  status: string;
  heartbeatAgeMs: number | null;
  inFlight: number;
  capacity: { soft: number; hard: number };
  warmContainers: number;
  latencyMs: { p50: number | null; p99: number | null };
  serviceMs?: number | null;
  errorRate: number;
  drained: boolean;
  weight: number;
  ejectedUntil: number | null;
  requestsPerSecond: number;
  requestsTotal: number;
  errorsTotal: number;
  failoversTotal: number;
  ejectionsTotal: number;
  busiestFunctions: Array<{ fn: string; idle: number; busy: number }>;
}

interface RecordedRequest {
  method: string;
  url: string;
  authorization: string | undefined;
  cookie: string | undefined;
  body: string;
}

class FakeAdminApi {
  readonly requests: RecordedRequest[] = [];
  readonly events: { at: number; region: string | null; kind: string; cause: string }[] = [];
  readonly regions: FakeRegion[];
  /** While true, stream connections are accepted but get no messages. */
  holdStream = false;
  /** While true, stream connections are refused (503): the router is unreachable or overloaded. */
  refuseStreams = false;
  /** While true, stream connections are refused 429 as the router refuses one past its limit of open streams. */
  streamsFull = false;
  /** While true, writes are refused 503 as the router refuses them while the registry is unreachable. */
  refuseWrites = false;
  /** What writes answer in x-edge-applied: whether every worker routes by the write yet. */
  applied = 'everywhere';
  /** Replaces fields of the registry status the API reports (e.g. a data loss). */
  registryStatus: Record<string, unknown> = {};
  /** While true, the event log cannot be read: /api/events answers 503 and the stream sends the failed read. */
  eventsUnreadable = false;
  /** What GET /api/certificates answers (ACME off unless a test turns it on). */
  certificates: Record<string, unknown> = { acme: false, certificates: [], failures: [] };
  /** What GET /api/certificates answers with when not 200 (a restart's 503, an older router's 404). */
  certificatesStatus = 200;
  /** Added to every snapshot's generatedAt: the router's wall clock stepped. */
  clockOffsetMs = 0;
  /** How long a stream's head waits (a router slow to answer). */
  streamDelayMs = 0;
  /** While set, a write waits for it before it is answered (a router confirming with every worker): holdWrites. */
  private writesHeld: Promise<void> | undefined;
  streamConnections = 0;
  private readonly streams = new Set<ServerResponse>();
  /** How many times a stream has been sent the event log. */
  eventsPushes = 0;
  /** The event log each stream was last sent. */
  private readonly eventsSent = new WeakMap<ServerResponse, string>();
  private readonly ticker: NodeJS.Timeout;

  /** Holds every write from now until the returned function is called (a test's "while it is sent", without guessing how long). */
  holdWrites(): () => void {
    let release!: () => void;
    this.writesHeld = new Promise<void>((resolve) => (release = resolve));
    return () => {
      this.writesHeld = undefined;
      release();
    };
  }

  private constructor(
    /** The one token taken; a test may replace it (a rotation). */
    public token: string,
    private readonly server: Server,
  ) {
    const places: [string, string, number, number][] = [
      ['atl', 'Atlanta', 33.749, -84.388], ['nyc', 'New York', 40.7128, -74.006], ['lax', 'Los Angeles', 34.0522, -118.2437],
      ['fra', 'Frankfurt', 50.1109, 8.6821], ['syd', HOSTILE_NAME, -33.8688, 151.2093],
    ];
    this.regions = places.map(([id, name, lat, lon], i) => ({
      id, name, lat, lon, status: 'up', heartbeatAgeMs: 300, inFlight: 12 * (i === 3 ? 1 : i), capacity: { soft: 64, hard: 96 },
      warmContainers: 3, latencyMs: { p50: 8.5, p99: 41 }, errorRate: 0.002, drained: false, weight: 100, ejectedUntil: null,
      requestsPerSecond: 14.2, requestsTotal: 1200, errorsTotal: 3, failoversTotal: 1, ejectionsTotal: 0, busiestFunctions: [],
    }));
    this.events.push({ at: Date.now() - 5_000, region: 'syd', kind: 'status', cause: '<b>not bold</b> heartbeat resumed' });
    // The log keeps its last entries for days: one of three days ago.
    this.events.push({ at: Date.now() - 3 * 86_400_000, region: 'atl', kind: 'status', cause: 'heartbeat lost days ago' });
    this.ticker = setInterval(() => this.broadcast(), 1_000);
    server.on('request', (req, res) => void this.handle(req, res));
  }

  static async start(token: string): Promise<FakeAdminApi> {
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return new FakeAdminApi(token, server);
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as { port: number }).port}`;
  }

  update(id: string, change: Partial<FakeRegion>): void {
    Object.assign(this.regions.find((r) => r.id === id)!, change);
    this.events.unshift({ at: Date.now(), region: id, kind: 'change', cause: JSON.stringify(change) });
    this.broadcast();
  }

  /** Several regions changed in one snapshot, as a partition or a restart shows them. */
  updateMany(changes: Record<string, Partial<FakeRegion>>): void {
    for (const [id, change] of Object.entries(changes)) Object.assign(this.regions.find((r) => r.id === id)!, change);
    this.broadcast();
  }

  dropStreams(): void {
    for (const res of this.streams) res.destroy();
    this.streams.clear();
  }

  async close(): Promise<void> {
    clearInterval(this.ticker);
    this.dropStreams();
    this.server.closeAllConnections();
    this.server.close();
    await once(this.server, 'close');
  }

  private snapshot() {
    return {
      generatedAt: Date.now() + this.clockOffsetMs,
      registry: { kind: 'memory', stale: false, staleForMs: 0, contactAt: Date.now(), lastFullSyncAt: Date.now(), dataLostForMs: null, ...this.registryStatus },
      regions: this.regions,
    };
  }

  private broadcast(): void {
    if (this.holdStream) return;
    // As the router's stream: a read that failed is sent as such (admin-api.ts latestEventsJson).
    const read = JSON.stringify(this.eventsUnreadable ? { error: { code: 'registry_unreachable', message: 'the health registry is unreachable' } } : { events: this.events.slice(0, 50) });
    const regions = `event: regions\ndata: ${JSON.stringify(this.snapshot())}\n\n`;
    // The event log only when it changed since this stream last had it, as the router sends it.
    for (const res of this.streams) {
      const fresh = this.eventsSent.get(res) !== read;
      this.eventsSent.set(res, read);
      if (fresh) this.eventsPushes += 1;
      res.write(fresh ? `${regions}event: events\ndata: ${read}\n\n` : regions);
    }
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    let body = '';
    for await (const chunk of req) body += String(chunk);
    const json = (status: number, value: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json', ...(req.method === 'GET' ? {} : { 'x-edge-applied': this.applied }) });
      res.end(JSON.stringify(value));
    };
    if (req.method === 'GET' && url === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-security-policy': DASHBOARD_CONTENT_SECURITY_POLICY });
      res.end(await dashboardHtml());
      return;
    }
    if (!url.startsWith('/api/')) return json(404, { error: { code: 'not_found', message: 'no such endpoint', requestId: 'fake' } });
    this.requests.push({ method: req.method ?? '', url, authorization: req.headers.authorization, cookie: req.headers.cookie, body });
    if (req.headers.authorization !== `Bearer ${this.token}`) {
      return json(401, { error: { code: 'unauthorized', message: 'admin token missing or invalid', requestId: 'fake' } });
    }
    const action = /^\/api\/regions\/([^/]+)\/(drain|undrain|weight)$/.exec(url);
    if (req.method === 'GET' && url === '/api/regions') return json(200, this.snapshot());
    if (req.method === 'GET' && url.startsWith('/api/events')) {
      if (this.eventsUnreadable) return json(503, { error: { code: 'registry_unreachable', message: 'the health registry is unreachable', requestId: 'fake' } });
      return json(200, { events: this.events.slice(0, 50) });
    }
    if (req.method === 'GET' && url.split('?')[0] === '/api/certificates') {
      if (this.certificatesStatus !== 200) return json(this.certificatesStatus, { error: { code: this.certificatesStatus === 404 ? 'not_found' : 'unavailable', message: 'no certificates now', requestId: 'fake' } });
      return json(200, this.certificates);
    }
    if (req.method === 'GET' && url === '/api/stream') {
      if (this.refuseStreams) return json(503, { error: { code: 'unavailable', message: 'try again', requestId: 'fake' } });
      if (this.streamsFull) return json(429, { error: { code: 'too_many_requests', message: '32 live streams are open already; close a dashboard and retry', requestId: 'fake' } });
      if (this.streamDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.streamDelayMs));
      if (res.destroyed) return;
      this.streamConnections += 1;
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
      res.write(': hello\n\n');
      this.streams.add(res);
      res.on('close', () => this.streams.delete(res));
      if (!this.holdStream) res.write(`event: regions\ndata: ${JSON.stringify(this.snapshot())}\n\n`);
      return;
    }
    if (action !== null && (req.method === 'POST' || req.method === 'PUT')) {
      const [, id, verb] = action;
      if (this.writesHeld !== undefined) await this.writesHeld;
      if (this.refuseWrites) return json(503, { error: { code: 'registry_unreachable', message: 'the health registry is unreachable', requestId: 'fake' } });
      if (verb === 'weight') {
        const weight = (JSON.parse(body) as { weight: number }).weight;
        this.update(id!, { weight });
        return json(200, { region: id, weight });
      }
      const drained = verb === 'drain';
      this.update(id!, { drained });
      return json(200, { region: id, drained });
    }
    return json(404, { error: { code: 'not_found', message: 'no such endpoint', requestId: 'fake' } });
  }
}
