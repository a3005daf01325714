/**
 * The operator dashboard: one self-contained HTML document (inline CSS, inline script, inline
 * SVG map), assembled from the files in browser/ (read at start; put together at the first request)
 * and served on the admin listener only. It carries no data and no secrets: the script reads
 * everything from the admin API with the bearer token the operator supplies in the URL fragment.
 * It must never reference anything external (it works offline) and must never insert data as
 * markup: every dynamic string goes through textContent or setAttribute.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MAP_HEIGHT, MAP_MARKERS_ID, MAP_VIEWBOX, MAP_WIDTH, WORLD_MAP_SVG } from './world-map.js';


/** Marker outlines around (0, 0), about 20 units across: each status has its own shape. */
function crossPath(): string {
  const a = 3.6;
  const l = 11;
  const plus: [number, number][] = [[-a, -l], [a, -l], [a, -a], [l, -a], [l, a], [a, a], [a, l], [-a, l], [-a, a], [-l, a], [-l, -a], [-a, -a]];
  const turned = plus.map(([x, y]) => [((x - y) / Math.SQRT2).toFixed(1), ((x + y) / Math.SQRT2).toFixed(1)]);
  return turned.map(([x, y], i) => `${i === 0 ? 'M' : 'L'}${x} ${y}`).join('') + 'Z';
}

const MARKER_SHAPES = {
  up: 'M-9 0a9 9 0 1 0 18 0a9 9 0 1 0-18 0Z',
  degraded: 'M0-11L10.5 7.5H-10.5Z',
  draining: 'M0-11.5L11.5 0L0 11.5L-11.5 0Z',
  down: crossPath(),
} as const;

const CLIENT_CONFIG = {
  map: { width: MAP_WIDTH, height: MAP_HEIGHT, view: MAP_VIEWBOX, markersId: MAP_MARKERS_ID },
  shapes: MARKER_SHAPES,
};

/**
 * The stylesheet as the page carries it, minified by csso (comments, the spaces that only make the
 * file readable, shorter spellings of the same values: about 1.6 KiB of the page's 60 KiB budget).
 * Without restructuring: rules keep their order and grouping, so the cascade is the file's.
 * csso is loaded here, not with this module: loading it and minifying take about 0.25 CPU-s, which
 * every process paid at its start (this module comes with the admin API into every command), though
 * only a router's admin listener serves the page, and only when someone asks for it.
 */
export async function compactCss(css: string): Promise<string> {
  const { minify } = await import('csso');
  return minify(css, { restructure: false }).css;
}

/**
 * The script as the page carries it: each line without its indentation, and without the lines that
 * are only comment (the JSDoc types are for tsc, the reasons for the reader: with the indentation
 * about 7.5 KiB of the budget), blank lines too. Safe line by line: indentation is content only inside a template
 * literal or a string continued over lines, which the script has none of (page.test.ts checks), so
 * a line that starts with // or /* is a comment; a comment after code on its line is kept.
 */
export function compactScript(js: string): string {
  const kept: string[] = [];
  let inComment = false;
  for (const indented of js.split('\n')) {
    let line = indented.replace(/^[ \t]+/, '');
    if (!inComment && line.startsWith('/*')) {
      inComment = true;
      line = line.slice(2);
    }
    if (inComment) {
      const end = line.indexOf('*/');
      if (end === -1) continue;
      inComment = false;
      line = line.slice(end + 2).replace(/^[ \t]+/, '');
    }
    if (line.trim() === '' || line.startsWith('//')) continue;
    kept.push(line);
  }
  return kept.join('\n') + '\n';
}

/**
 * The page's own files (src/dashboard/browser/): markup, style and a script that tsc checks with
 * the DOM's types and ESLint lints with browser globals. Read once at start, next to this module
 * when run from src/, or from the package's src/ when run from dist/ (tsc copies no assets).
 */
function browserDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, 'browser'), join(here, '..', '..', '..', 'src', 'dashboard', 'browser')];
  const found = candidates.find((dir) => existsSync(join(dir, 'dashboard.js')));
  if (found === undefined) throw new Error(`the dashboard's files are missing (looked in ${candidates.join(', ')})`);
  return found;
}
const BROWSER_DIR = browserDir();
const STYLESHEET = readFileSync(join(BROWSER_DIR, 'dashboard.css'), 'utf8');
const BODY = readFileSync(join(BROWSER_DIR, 'body.html'), 'utf8');
const SCRIPT = compactScript(readFileSync(join(BROWSER_DIR, 'dashboard.js'), 'utf8'));

/** The map and marker settings the script reads, as data (a JSON block is never executed). */
const CONFIG_JSON = JSON.stringify(CLIENT_CONFIG).replace(/</g, '\\u003c');

/** The one inline script, exactly as the page carries it (its hash is what the CSP allows). */
const INLINE_SCRIPT = `\n${SCRIPT}`;

/**
 * The policy the page is written for; the page also declares it in a <meta> tag, so it holds even
 * when the server sends no header. Only this exact script may run (CSP Level 2 hash source: no
 * 'unsafe-inline', so an injected script or event handler is refused); inline style is the one
 * allowance, and it cannot run code.
 */
export const DASHBOARD_CONTENT_SECURITY_POLICY =
  `default-src 'self'; script-src 'sha256-${createHash('sha256').update(INLINE_SCRIPT).digest('base64')}'; ` +
  "style-src 'unsafe-inline'; img-src data:; connect-src 'self'; base-uri 'none'; form-action 'none'";

/** The whole dashboard document; identical for every request (no data, no secrets): built at the first, then kept. */
export function dashboardHtml(): Promise<string> {
  page ??= compactCss(STYLESHEET).then(pageWithStyle);
  return page;
}
let page: Promise<string> | undefined;

function pageWithStyle(style: string): string {
  return (
    '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n' +
    '<meta name="viewport" content="width=device-width, initial-scale=1">\n' +
    `<meta http-equiv="Content-Security-Policy" content="${DASHBOARD_CONTENT_SECURITY_POLICY}">\n` +
    '<meta name="referrer" content="no-referrer">\n' +
    '<meta name="color-scheme" content="light dark">\n' +
    '<link rel="icon" href="data:,">\n' +
    '<title>Edge router dashboard</title>\n' +
    `<style>${style}</style>\n</head>\n<body>\n` +
    BODY.replace('{{MAP}}', () => WORLD_MAP_SVG) +
    `<script type="application/json" id="dashboard-config">${CONFIG_JSON}</script>\n` +
    `<script>${INLINE_SCRIPT}</script>\n</body>\n</html>\n`
  );
}
