/**
 * A real browser for the dashboard tests: Debian's chromium driven by playwright-core (no browser
 * download). Suites skip loudly when chromium is missing and fail in CI; this module launches
 * nothing at import time.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { missingProgram } from './system-program.js';

export const CHROMIUM_PATH = '/usr/bin/chromium';

export const CHROMIUM_MISSING = missingProgram(CHROMIUM_PATH, 'apt-get install -y chromium');

/** Where screenshots and other artifacts of browser tests go (ignored by lint and git). */
export const ARTIFACTS_DIR = join(process.cwd(), 'test-results');

/** `extraArgs`: more chromium switches (a host-resolver rule for the router's names, say). */
export function launchChromium(extraArgs: readonly string[] = []): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', ...extraArgs],
    timeout: 30_000,
  });
}

/** Collects what a page complains about: uncaught errors, console errors and CSP violations. */
export function watchPage(page: Page): { problems: string[] } {
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
  });
  return { problems };
}

/** Saves a full-page screenshot under test-results/ and returns its path. */
export async function saveScreenshot(page: Page, name: string): Promise<string> {
  await mkdir(ARTIFACTS_DIR, { recursive: true });
  const path = join(ARTIFACTS_DIR, name);
  await page.screenshot({ path, fullPage: true });
  return path;
}
