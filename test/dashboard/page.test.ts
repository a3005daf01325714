import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Script } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { compactCss, compactScript, DASHBOARD_CONTENT_SECURITY_POLICY, dashboardHtml } from '../../src/dashboard/page.js';
import { MAP_VIEWBOX, project, WORLD_MAP_SVG } from '../../src/dashboard/world-map.js';

/**
 * The dashboard document without a browser: self-contained (it must work offline and under a
 * strict CSP), small, and free of any way to turn data into markup. test/dashboard/browser.test.ts
 * drives it in a real browser.
 */
const html = await dashboardHtml();

/** Every <script> element: its attributes and its text. */
function scriptElements(doc: string): Array<{ attrs: string; text: string }> {
  return [...doc.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)].map((m) => {
    expect(m[1], 'inline scripts only').not.toMatch(/\bsrc\s*=/i);
    return { attrs: m[1] ?? '', text: m[2] ?? '' };
  });
}

/** The scripts a browser runs (a JSON data block is not one). */
function inlineScripts(doc: string): string[] {
  return scriptElements(doc).filter((s) => !/\btype\s*=/i.test(s.attrs)).map((s) => s.text);
}

function inlineStyles(doc: string): string {
  return [...doc.matchAll(/<style\b[^>]*>([\s\S]*?)<\/style>/gi)].map((m) => m[1] ?? '').join('\n');
}

describe('dashboard page', () => {
  it('is one complete HTML document that declares its own strict CSP', () => {
    expect(html).toMatch(/^<!doctype html>\n<html lang="en">/);
    expect(html).toContain('<meta name="viewport" content="width=device-width, initial-scale=1">');
    expect(html).toContain(`<meta http-equiv="Content-Security-Policy" content="${DASHBOARD_CONTENT_SECURITY_POLICY}">`);
    expect(DASHBOARD_CONTENT_SECURITY_POLICY).toContain("default-src 'self'");
    expect(DASHBOARD_CONTENT_SECURITY_POLICY).not.toMatch(/unsafe-eval|unsafe-inline'[^;]*script|\*|https?:/);
    // Only the page's own script may run: its hash, and no 'unsafe-inline' for scripts.
    const scriptSrc = /script-src ([^;]+)/.exec(DASHBOARD_CONTENT_SECURITY_POLICY)![1]!;
    expect(scriptSrc).not.toContain('unsafe-inline');
    const inline = /<script>([\s\S]*?)<\/script>/.exec(html)![1]!;
    expect(scriptSrc).toBe(`'sha256-${createHash('sha256').update(inline).digest('base64')}'`);
    expect(html.trimEnd()).toMatch(/<\/html>$/);
  });

  it('is built once (csso loaded and the stylesheet minified at the first request), then kept', () => {
    expect(dashboardHtml()).toBe(dashboardHtml());
  });

  it('is identical for every request: it carries no data and no secrets', async () => {
    expect(await dashboardHtml()).toBe(html);
    expect(html).not.toMatch(/Bearer [A-Za-z0-9]/);
  });

  it('references nothing outside the document', () => {
    const markup = html.replace(/<script\b[^>]*>[\s\S]*?<\/script>/gi, '');
    const refs = [...markup.matchAll(/\b(?:src|href|xlink:href|action|poster|srcset)\s*=\s*("[^"]*"|'[^']*'|[^\s>]+)/gi)].map((m) => m[1]!.replace(/^["']|["']$/g, ''));
    expect(refs).toEqual(['data:,']);
    expect(inlineScripts(html)[0]).not.toMatch(/setAttribute\(\s*['"](?:src|href|action)['"]|\.(?:src|href|action)\s*=[^=]|\bimport\s*\(|fetch\(\s*['"]https?:/);
    expect(html).not.toMatch(/@import/i);
    expect(inlineStyles(html)).not.toMatch(/url\s*\(/i);
    expect(html).not.toMatch(/<(?:iframe|object|embed|img|link\s+rel="stylesheet")\b/i);
    // The only absolute URL is the SVG namespace the script needs for createElementNS.
    const urls = [...html.matchAll(/(?:https?:)?\/\/[a-z0-9.-]+\.[a-z]{2,}[^\s'"<>)]*/gi)].map((m) => m[0]);
    expect(new Set(urls)).toEqual(new Set(['http://www.w3.org/2000/svg']));
  });

  it('carries the stylesheet minified (no comments, no spaces that only make it readable), every rule in its place', async () => {
    const file = readFileSync('src/dashboard/browser/dashboard.css', 'utf8');
    const carried = inlineStyles(html);
    expect(carried).toBe(await compactCss(file));
    expect(carried).not.toContain('/*');
    expect(carried.length).toBeLessThan(file.length - 1000);
    // Not restructured: as many rules as the file has, so the cascade is the file's.
    const rules = (css: string) => css.replace(/\/\*[\s\S]*?\*\//g, '').split('{').length;
    expect(rules(carried)).toBe(rules(file));
  });

  it('keeps quoted text as it is and rules apart', async () => {
    const css = '/* why */\n.a > b, .c:hover {\n  font: 15px/1.45 "Segoe UI", Roboto;\n  grid-template-areas: "map  events" "x y";\n}\n.d :focus-visible { content: "a: b; c" }\n.e { color: red }\n.e { margin: 0 }\n';
    const out = await compactCss(css);
    for (const kept of ['"Segoe UI"', '"map  events"', '"x y"', '.d :focus-visible', '"a: b; c"']) expect(out).toContain(kept);
    // Two rules for one selector stay two (restructuring would merge them).
    expect(out.match(/\.e\{/g)).toHaveLength(2);
  });

  it('carries a script line by line as it is, without the indentation', () => {
    expect(compactScript("function f(a) {\n  if (a) {\n\t\treturn 'x  y';\n  }\n}\n")).toBe("function f(a) {\nif (a) {\nreturn 'x  y';\n}\n}\n");
  });

  it('leaves out the lines that are only comment, and blank lines, and keeps every line of code whole', () => {
    const js = [
      '// @ts-check',
      '/**',
      ' * Why, at length.',
      ' * @param {string} a',
      ' */',
      'function f(a) {',
      '',
      "  /** @type {string} */ const b = a + '/* not a comment */'; // said after code: kept",
      '  /* a one-line block */',
      "  const url = 'http://example.net/*';",
      '  /* a block',
      '     that ends before code */ return b',
      '    * 2;',
      '}',
    ].join('\n');
    expect(compactScript(js)).toBe(
      [
        'function f(a) {',
        "const b = a + '/* not a comment */'; // said after code: kept",
        "const url = 'http://example.net/*';",
        'return b',
        '* 2;',
        '}',
        '',
      ].join('\n'),
    );
  });

  it('stays under its size budget', () => {
    expect(Buffer.byteLength(html)).toBeLessThan(60 * 1024);
  });

  it('runs exactly the script that tsc and ESLint check (src/dashboard/browser/dashboard.js), its indentation and comment lines aside, and carries its settings as JSON data', () => {
    const scripts = inlineScripts(html);
    expect(scripts).toHaveLength(1);
    const file = readFileSync('src/dashboard/browser/dashboard.js', 'utf8');
    expect(scripts[0]!.trim()).toBe(compactScript(file).trim());
    expect(scripts[0]!.length).toBeLessThan(file.length - 4000);
    // Still a script (compiled, not run): the comments left out took no code with them.
    expect(() => new Script(scripts[0]!)).not.toThrow();
    for (const line of scripts[0]!.split('\n')) expect(line).not.toMatch(/^(?:\/\/|\/\*|\*)/);
    // Indentation is content only inside a template literal or a string continued over lines: the
    // script has neither (a backtick only in a comment's text, no line ending in a backslash).
    for (const line of file.split('\n')) {
      if (line.includes('`')) expect(line).toMatch(/^\s*\*/);
      expect(line).not.toMatch(/\\$/);
    }
    expect(scripts[0]).not.toMatch(/<\/script/i);
    const data = scriptElements(html).filter((s) => /\btype="application\/json"/.test(s.attrs));
    expect(data.map((d) => d.attrs.trim())).toEqual(['type="application/json" id="dashboard-config"']);
    expect(JSON.parse(data[0]!.text)).toMatchObject({ map: { markersId: 'map-markers' }, shapes: { up: expect.any(String), down: expect.any(String) } });
    expect(data[0]!.text).not.toContain('<');
  });

  it('keeps the token out of URLs and cookies', () => {
    const script = inlineScripts(html)[0]!;
    expect(script).toContain("history.replaceState(");
    expect(script).toContain('sessionStorage');
    expect(script).not.toMatch(/document\.cookie|localStorage|new EventSource/);
    expect(script).toContain("credentials: 'omit'");
  });

  it('carries the test hooks and the status legend with shapes, not only colour', () => {
    for (const hook of ['data-testid="events"', 'data-testid="stale"', 'data-testid="connection"', 'data-testid="auth"', 'data-testid="regions"']) {
      expect(html).toContain(hook);
    }
    for (const [symbol, label] of [['●', 'up'], ['▲', 'degraded'], ['◆', 'draining'], ['✕', 'down']] as const) {
      expect(html).toContain(`<span class="symbol" aria-hidden="true">${symbol}</span> ${label}</li>`);
    }
    expect(html).toContain('id="map-markers"');
  });
});

describe('world map', () => {
  it('is inline SVG, small, with land and a graticule', () => {
    expect(WORLD_MAP_SVG).toMatch(/^<svg class="world-map" viewBox="0 15 1000 405"/);
    expect(WORLD_MAP_SVG).toContain('class="map-land"');
    expect(WORLD_MAP_SVG).toContain('class="map-graticule"');
    expect(Buffer.byteLength(WORLD_MAP_SVG)).toBeLessThan(15 * 1024);
    expect(html).toContain(WORLD_MAP_SVG);
  });

  it.each([
    { place: 'null island', lat: 0, lon: 0, x: 500, y: 250 },
    { place: 'north-west corner', lat: 90, lon: -180, x: 0, y: 0 },
    { place: 'south-east corner', lat: -90, lon: 180, x: 1000, y: 500 },
    { place: 'Frankfurt', lat: 50.1109, lon: 8.6821, x: 524.1, y: 110.8 },
    { place: 'Sydney', lat: -33.8688, lon: 151.2093, x: 920, y: 344.1 },
    { place: 'a longitude past the antimeridian wraps', lat: 0, lon: 190, x: 27.8, y: 250 },
    { place: 'a latitude past the pole clamps', lat: 95, lon: 0, x: 500, y: 0 },
  ])('projects $place to ($x, $y)', ({ lat, lon, x, y }) => {
    expect(project(lat, lon)).toEqual({ x, y });
  });

  it('shows every region of regions.json inside its window', async () => {
    const { readFile } = await import('node:fs/promises');
    const { regions } = JSON.parse(await readFile('regions.json', 'utf8')) as { regions: { id: string; lat: number; lon: number }[] };
    for (const r of regions) {
      const { x, y } = project(r.lat, r.lon);
      expect(x, r.id).toBeGreaterThan(MAP_VIEWBOX.x);
      expect(x, r.id).toBeLessThan(MAP_VIEWBOX.x + MAP_VIEWBOX.width);
      expect(y, r.id).toBeGreaterThan(MAP_VIEWBOX.y);
      expect(y, r.id).toBeLessThan(MAP_VIEWBOX.y + MAP_VIEWBOX.height);
    }
  });
});
