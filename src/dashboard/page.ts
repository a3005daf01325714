/**
 * The operator dashboard: one self-contained HTML document (inline CSS, inline script, inline
 * SVG map) served on the admin listener only. It carries no data and no secrets: the script reads
 * everything from the admin API with the bearer token the operator supplies in the URL fragment.
 * It must never reference anything external (it works offline) and must never insert data as
 * markup: every dynamic string goes through textContent or setAttribute.
 */
import { createHash } from 'node:crypto';
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

const STYLE = String.raw`
:root {
  color-scheme: light dark;
  --bg: #f6f8fa; --panel: #ffffff; --text: #1f2328; --muted: #57606a; --border: #d0d7de;
  --track: #e6eaef; --button: #f6f8fa; --button-hover: #eaeef2;
  --ocean: #dcebf7; --land: #b9c7b0; --grid: #ffffff; --label-bg: rgba(255, 255, 255, 0.92);
  --up: #1a7f37; --degraded: #9a6700; --draining: #0969da; --down: #cf222e; --focus: #0969da;
  --up-bg: #dafbe1; --degraded-bg: #fff8c5; --draining-bg: #ddf4ff; --down-bg: #ffebe9;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0d1117; --panel: #161b22; --text: #e6edf3; --muted: #9198a1; --border: #3d444d;
    --track: #262c36; --button: #21262d; --button-hover: #30363d;
    --ocean: #0f2236; --land: #34493a; --grid: #1c3450; --label-bg: rgba(13, 17, 23, 0.9);
    --up: #3fb950; --degraded: #d29922; --draining: #58a6ff; --down: #ff7b72; --focus: #58a6ff;
    --up-bg: #12261a; --degraded-bg: #2b2111; --draining-bg: #0c2440; --down-bg: #3a1517;
  }
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; text-size-adjust: 100%; }
body { margin: 0; background: var(--bg); color: var(--text); font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
h1, h2, h3 { line-height: 1.2; }
.sr-only { position: absolute; width: 1px; height: 1px; padding: 0; margin: -1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; border: 0; }
:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
[hidden] { display: none !important; }

.top { display: flex; flex-wrap: wrap; align-items: center; gap: 0.5rem 0.75rem; padding: 0.6rem 1rem; background: var(--panel); border-bottom: 1px solid var(--border); }
.top h1 { margin: 0 auto 0 0; font-size: 1.15rem; }
.badges { display: flex; flex-wrap: wrap; gap: 0.4rem; align-items: center; }
.badge { display: inline-flex; align-items: center; gap: 0.35em; padding: 0.15rem 0.6rem; border: 1px solid var(--border); border-radius: 999px; font-size: 0.85rem; white-space: nowrap; }
.badge[data-state="fresh"], .badge[data-state="live"] { color: var(--up); border-color: currentColor; background: var(--up-bg); }
.badge[data-state="stale"], .badge[data-state="lost"], .badge[data-state="reconnecting"], .badge[data-state="lagging"] { color: var(--degraded); border-color: currentColor; background: var(--degraded-bg); }
.badge[data-state="offline"], .badge[data-state="auth"] { color: var(--down); border-color: currentColor; background: var(--down-bg); }
.updated { color: var(--muted); font-size: 0.85rem; }

button, input { font: inherit; color: var(--text); }
button { min-height: 2.25rem; padding: 0.3rem 0.8rem; border: 1px solid var(--border); border-radius: 6px; background: var(--button); cursor: pointer; }
button:hover:not(:disabled) { background: var(--button-hover); }
button:disabled { cursor: progress; opacity: 0.7; }
input { min-height: 2.25rem; padding: 0.25rem 0.5rem; border: 1px solid var(--muted); border-radius: 6px; background: var(--panel); }
@media (pointer: coarse) { button, input { min-height: 2.75rem; } }
.link-button { min-height: 0; padding: 0.1rem 0.5rem; font-size: 0.85rem; }

.notice { margin: 0.75rem 1rem 0; padding: 0.5rem 0.75rem; border: 1px solid var(--down); border-radius: 6px; background: var(--down-bg); color: var(--text); }

.auth { max-width: 34rem; margin: 2rem auto; padding: 1.25rem; background: var(--panel); border: 1px solid var(--border); border-radius: 8px; }
.auth h2 { margin-top: 0; font-size: 1.2rem; }
.auth form { display: flex; flex-wrap: wrap; gap: 0.5rem; align-items: flex-end; }
.auth label { display: block; width: 100%; font-weight: 600; }
.auth input { flex: 1 1 14rem; min-width: 0; }
.auth code { overflow-wrap: anywhere; }

main { display: grid; grid-template-columns: minmax(0, 1fr); gap: 1rem; max-width: 1600px; margin: 0 auto; padding: 1rem; }
.panel { min-width: 0; padding: 0.75rem 1rem 1rem; background: var(--panel); border: 1px solid var(--border); border-radius: 8px; }
.panel h2 { margin: 0 0 0.6rem; font-size: 1rem; }
@media (max-width: 599px) {
  main { padding: 0.6rem; gap: 0.6rem; }
  .panel { padding: 0.6rem 0.7rem 0.75rem; }
  .top { padding: 0.5rem 0.7rem; }
}
@media (min-width: 960px) {
  main { grid-template-columns: minmax(0, 2fr) minmax(18rem, 1fr); grid-template-areas: "map events" "regions regions"; }
  .map-panel { grid-area: map; }
  .events-panel { grid-area: events; display: flex; flex-direction: column; }
  .events-panel .events-scroll { flex: 1 1 0; height: 0; min-height: 12rem; max-height: none; }
  .regions-panel { grid-area: regions; }
}

.map-figure { margin: 0; }
.world-map { display: block; width: 100%; height: auto; border-radius: 6px; }
.map-ocean { fill: var(--ocean); }
.map-land { fill: var(--land); }
.map-graticule { fill: none; stroke: var(--grid); stroke-width: 1; }
.map-equator { fill: none; stroke: var(--grid); stroke-width: 1.5; stroke-dasharray: 6 4; }
.marker-symbol { fill: var(--status-color); stroke: var(--panel); stroke-width: 2.5; paint-order: stroke; }
.marker-label-bg { fill: var(--label-bg); stroke: var(--status-color); }
.marker-label { fill: var(--text); font-weight: 600; }
.legend { display: flex; flex-wrap: wrap; gap: 0.25rem 1rem; margin: 0.5rem 0 0; padding: 0; list-style: none; font-size: 0.85rem; color: var(--muted); }
.legend .symbol { color: var(--status-color); font-size: 1rem; }


/* Status colours: always paired with a shape or symbol and a word, never the only signal. */
.marker, .card, .legend li { --status-color: var(--muted); --status-bg: var(--track); }
.marker[data-status="up"], .card[data-status="up"], .legend li[data-status="up"] { --status-color: var(--up); --status-bg: var(--up-bg); }
.marker[data-status="degraded"], .card[data-status="degraded"], .legend li[data-status="degraded"] { --status-color: var(--degraded); --status-bg: var(--degraded-bg); }
.marker[data-status="draining"], .card[data-status="draining"], .legend li[data-status="draining"] { --status-color: var(--draining); --status-bg: var(--draining-bg); }
.marker[data-status="down"], .card[data-status="down"], .legend li[data-status="down"] { --status-color: var(--down); --status-bg: var(--down-bg); }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(100%, 14rem), 1fr)); gap: 0.75rem; }
.card { min-width: 0; padding: 0.7rem 0.8rem 0.8rem; border: 1px solid var(--border); border-left: 6px solid var(--status-color); border-radius: 8px; background: var(--panel); }
.card-head { display: flex; flex-wrap: wrap; align-items: center; gap: 0.3rem 0.5rem; }
.card-title { margin: 0; font-size: 1.05rem; overflow-wrap: anywhere; min-width: 0; }
.card-id { color: var(--muted); font-size: 0.85rem; font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.status { margin-left: auto; display: inline-flex; gap: 0.3em; align-items: center; padding: 0 0.55rem; border: 1px solid var(--status-color); border-radius: 999px; background: var(--status-bg); color: var(--text); font-weight: 600; white-space: nowrap; }
.status-icon { color: var(--status-color); }
.drain-flag { display: inline-flex; padding: 0 0.55rem; border: 1px dashed var(--draining); border-radius: 999px; background: var(--draining-bg); color: var(--text); font-weight: 600; white-space: nowrap; }
.card[data-drained="true"] { border-left-style: double; border-left-color: var(--draining); }
.metrics { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 0.4rem 0.75rem; margin: 0.6rem 0; }
.metrics > div { min-width: 0; }
.metrics .wide { grid-column: 1 / -1; }
.metrics dt { color: var(--muted); font-size: 0.78rem; }
.metrics dd { margin: 0; font-variant-numeric: tabular-nums; overflow-wrap: anywhere; }
.metrics dd[data-warn="true"] { color: var(--down); font-weight: 600; }
.loadbar { position: relative; height: 0.6rem; margin: 0.25rem 0; border-radius: 4px; background: var(--track); overflow: hidden; }
.loadbar-fill { position: absolute; top: 0; bottom: 0; left: 0; width: 0; background: var(--up); transition: width 0.3s ease; }
.loadbar[data-level="high"] .loadbar-fill { background: var(--degraded); }
.loadbar[data-level="full"] .loadbar-fill { background: var(--down); }
.loadbar-soft { position: absolute; top: 0; bottom: 0; width: 2px; margin-left: -1px; background: var(--text); }
.controls { display: flex; flex-wrap: wrap; gap: 0.5rem; align-items: flex-end; justify-content: space-between; padding-top: 0.6rem; border-top: 1px solid var(--border); }
.weight-form { display: grid; grid-template-columns: auto auto; gap: 0.15rem 0.35rem; align-items: end; }
.weight-form label { grid-column: 1 / -1; color: var(--muted); font-size: 0.78rem; }
.weight-form input { width: 4.75rem; }
.card-message { min-height: 1.2em; margin: 0.4rem 0 0; font-size: 0.85rem; color: var(--muted); overflow-wrap: anywhere; }
.card-message[data-kind="error"] { color: var(--down); font-weight: 600; }

.events-scroll { max-height: 24rem; overflow: auto; }
.events { width: 100%; border-collapse: collapse; table-layout: fixed; font-size: 0.85rem; }
.events th { position: sticky; top: 0; background: var(--panel); color: var(--muted); font-weight: 600; text-align: left; }
.events th, .events td { padding: 0.3rem 0.4rem; border-bottom: 1px solid var(--border); vertical-align: top; overflow-wrap: anywhere; }
.events .col-time { width: 5.2rem; }
.events .col-region { width: 4.2rem; }
.events .col-kind { width: 28%; }
.events td:first-child { font-variant-numeric: tabular-nums; }
.empty { color: var(--muted); font-size: 0.85rem; }
@media (max-width: 599px) {
  .events thead { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
  .events, .events tbody { display: block; }
  .events tr { display: grid; grid-template-columns: auto auto minmax(0, 1fr); gap: 0 0.6rem; padding: 0.35rem 0; border-bottom: 1px solid var(--border); }
  .events td { padding: 0; border: 0; }
  .events td:nth-child(3) { font-weight: 600; }
  .events td:last-child { grid-column: 1 / -1; color: var(--muted); }
}
`;

const BODY = String.raw`
<header class="top">
  <h1>Edge router dashboard</h1>
  <div class="badges">
    <span class="badge" data-testid="stale" data-state="unknown">Registry: unknown</span>
    <span class="badge" data-testid="connection" data-state="idle" role="status">Not connected</span>
    <span class="updated" data-testid="updated"></span>
    <button type="button" class="link-button" id="forget-token" hidden>Forget token</button>
  </div>
</header>
<p class="notice" id="notice" role="alert" hidden></p>
<section class="auth" id="auth" data-testid="auth" aria-labelledby="auth-title" hidden>
  <h2 id="auth-title">Admin token required</h2>
  <p id="auth-reason">This dashboard reads the admin API, which needs the router's admin token.</p>
  <form id="auth-form" autocomplete="off" novalidate>
    <label for="token-input">Admin token</label>
    <input id="token-input" name="token" type="password" autocomplete="off" spellcheck="false" required>
    <button type="submit">Use token</button>
  </form>
  <p class="empty">Or open the page as <code>/#token=&lt;token&gt;</code>: the fragment never leaves the browser, and the token is kept only for this tab.</p>
</section>
<main id="dashboard" hidden>
  <section class="panel map-panel" aria-labelledby="map-title">
    <h2 id="map-title">Regions on the map</h2>
    <figure class="map-figure">
      {{MAP}}
      <figcaption>
        <ul class="legend" aria-label="Map legend">
          <li data-status="up"><span class="symbol" aria-hidden="true">●</span> up</li>
          <li data-status="degraded"><span class="symbol" aria-hidden="true">▲</span> degraded</li>
          <li data-status="draining"><span class="symbol" aria-hidden="true">◆</span> draining</li>
          <li data-status="down"><span class="symbol" aria-hidden="true">✕</span> down</li>
        </ul>
      </figcaption>
    </figure>
  </section>
  <section class="panel events-panel" aria-labelledby="events-title">
    <h2 id="events-title">Recent events</h2>
    <div class="events-scroll" tabindex="0" role="region" aria-labelledby="events-title">
      <table class="events" data-testid="events">
        <thead><tr><th scope="col" class="col-time">Time</th><th scope="col" class="col-region">Region</th><th scope="col" class="col-kind">Kind</th><th scope="col">Cause</th></tr></thead>
        <tbody id="events-body"></tbody>
      </table>
      <p class="empty" id="events-empty">No events yet.</p>
    </div>
  </section>
  <section class="panel regions-panel" aria-labelledby="regions-title">
    <h2 id="regions-title">Regions</h2>
    <div class="cards" id="regions" data-testid="regions"></div>
  </section>
</main>
<div class="sr-only" id="announce" aria-live="polite"></div>
`;

/*
 * The browser side. Written as plain JavaScript in a raw string (no template literals inside, so
 * no backticks or dollar-brace sequences). Rules: data only ever reaches the DOM through
 * textContent / setAttribute; the token only ever goes into the Authorization header.
 */
const SCRIPT = String.raw`
'use strict';
const TOKEN_KEY = 'edge-router.admin-token';
const SVG_NS = 'http://www.w3.org/2000/svg';
const STATUS = {
  up: { symbol: '●', label: 'up' },
  degraded: { symbol: '▲', label: 'degraded' },
  draining: { symbol: '◆', label: 'draining' },
  down: { symbol: '✕', label: 'down' },
};
const RECONNECT_MAX_MS = 10000;
const STREAM_SILENCE_MS = 5000;
const MAX_EVENTS = 50;

const byId = (id) => document.getElementById(id);
const q = (sel) => document.querySelector(sel);
const ui = {
  auth: byId('auth'), authReason: byId('auth-reason'), authForm: byId('auth-form'), tokenInput: byId('token-input'),
  dashboard: byId('dashboard'), regions: byId('regions'), eventsBody: byId('events-body'), eventsEmpty: byId('events-empty'),
  stale: q('[data-testid="stale"]'), connection: q('[data-testid="connection"]'), updated: q('[data-testid="updated"]'),
  notice: byId('notice'), announce: byId('announce'), forget: byId('forget-token'),
  map: q('.world-map'), markers: byId(CONFIG.map.markersId),
};

const state = {
  token: null,
  session: 0,
  views: new Map(),
  events: [],
  eventRows: new Map(),
  lastGeneratedAt: 0,
  stream: null,
  streamOpenedOnce: false,
  attempt: 0,
  reconnectTimer: 0,
  lastMessageAt: 0,
  layoutPending: false,
  seq: 0,
};

class AuthRequired extends Error {}
class ApiError extends Error {
  constructor(status, code, message, requestId) {
    super(message);
    this.status = status;
    this.code = code;
    this.requestId = requestId;
  }
}

function make(tag, attrs, text) {
  const node = document.createElement(tag);
  if (attrs) for (const name of Object.keys(attrs)) node.setAttribute(name, attrs[name]);
  if (text !== undefined) node.textContent = text;
  return node;
}
function makeSvg(tag, attrs) {
  const node = document.createElementNS(SVG_NS, tag);
  if (attrs) for (const name of Object.keys(attrs)) node.setAttribute(name, attrs[name]);
  return node;
}
function setText(node, text) {
  const value = String(text);
  if (node.textContent !== value) node.textContent = value;
}
function setAttr(node, name, value) {
  const text = String(value);
  if (node.getAttribute(name) !== text) node.setAttribute(name, text);
}
function num(value, fallback) {
  return typeof value === 'number' && Number.isFinite(value) ? value : fallback;
}

/* ---------- formatting ---------- */
function fmtCount(n) {
  return num(n, 0).toLocaleString('en-US');
}
function fmtRate(n) {
  const v = num(n, 0);
  return v < 10 ? v.toFixed(1) : String(Math.round(v));
}
function fmtMs(n) {
  const v = num(n, 0);
  return (v < 10 ? v.toFixed(1) : String(Math.round(v))) + ' ms';
}
function fmtPercent(ratio) {
  const v = num(ratio, 0) * 100;
  if (v === 0) return '0 %';
  return (v < 1 ? v.toFixed(2) : v.toFixed(1)) + ' %';
}
function fmtDuration(ms) {
  const v = Math.max(0, num(ms, 0));
  if (v < 60000) return (v / 1000).toFixed(1) + ' s';
  if (v < 3600000) return Math.floor(v / 60000) + ' min ' + Math.floor((v % 60000) / 1000) + ' s';
  return Math.floor(v / 3600000) + ' h ' + Math.floor((v % 3600000) / 60000) + ' min';
}
function pad2(n) {
  return n < 10 ? '0' + n : String(n);
}
function fmtClock(at) {
  const d = new Date(num(at, 0));
  return pad2(d.getHours()) + ':' + pad2(d.getMinutes()) + ':' + pad2(d.getSeconds());
}
function statusInfo(status) {
  return Object.prototype.hasOwnProperty.call(STATUS, status) ? STATUS[status] : { symbol: '?', label: String(status) };
}

/* ---------- token ---------- */
function readStoredToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch (_) {
    return null;
  }
}
function storeToken(token) {
  try {
    if (token === null) sessionStorage.removeItem(TOKEN_KEY);
    else sessionStorage.setItem(TOKEN_KEY, token);
  } catch (_) {
    /* storage unavailable: the token lives in memory for this page only */
  }
}
/** Moves #token=… out of the address bar (and history) into sessionStorage. */
function takeTokenFromFragment() {
  const fragment = location.hash.replace(/^#/, '');
  if (fragment === '') return null;
  const params = new URLSearchParams(fragment);
  const token = params.get('token');
  if (token === null) return null;
  params.delete('token');
  const rest = params.toString();
  history.replaceState(history.state, '', location.pathname + location.search + (rest === '' ? '' : '#' + rest));
  const trimmed = token.trim();
  if (trimmed === '') return null;
  storeToken(trimmed);
  return trimmed;
}

/* ---------- API ---------- */
async function api(method, path, body) {
  const session = state.session;
  const headers = { Authorization: 'Bearer ' + state.token, Accept: 'application/json' };
  const init = { method: method, headers: headers, cache: 'no-store', credentials: 'omit' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  let data = null;
  try {
    data = await res.json();
  } catch (_) {
    data = null;
  }
  if (session !== state.session) throw new AuthRequired('superseded');
  if (res.status === 401) {
    requireToken('invalid');
    throw new AuthRequired('unauthorized');
  }
  if (!res.ok) {
    const err = data && typeof data === 'object' && data.error && typeof data.error === 'object' ? data.error : {};
    throw new ApiError(res.status, String(err.code || 'http_' + res.status), String(err.message || res.statusText || 'request failed'), err.requestId);
  }
  return data;
}

/* ---------- header state ---------- */
function setConnection(kind, text) {
  setAttr(ui.connection, 'data-state', kind);
  setText(ui.connection, text);
}
function showNotice(text) {
  if (text === null) {
    ui.notice.hidden = true;
    ui.notice.textContent = '';
  } else {
    ui.notice.textContent = text;
    ui.notice.hidden = false;
  }
}
function announce(text) {
  ui.announce.textContent = text;
}
function renderRegistry(registry) {
  if (!registry || typeof registry !== 'object') return;
  const kind = String(registry.kind || 'registry');
  if (typeof registry.dataLostForMs === 'number') {
    setAttr(ui.stale, 'data-state', 'lost');
    setText(ui.stale, '⚠ Registry (' + kind + ') lost its data ' + fmtDuration(registry.dataLostForMs) + ' ago: routing on the last-known state while it is written back');
  } else if (registry.stale) {
    setAttr(ui.stale, 'data-state', 'stale');
    setText(ui.stale, '⚠ Registry (' + kind + ') stale for ' + fmtDuration(registry.staleForMs));
  } else {
    setAttr(ui.stale, 'data-state', 'fresh');
    setText(ui.stale, '✓ Registry (' + kind + ') fresh');
  }
}
function registryText(registry) {
  if (!registry || typeof registry !== 'object') return 'unknown';
  if (typeof registry.dataLostForMs === 'number') return '⚠ data lost ' + fmtDuration(registry.dataLostForMs) + ' ago';
  return registry.stale ? '⚠ stale ' + fmtDuration(registry.staleForMs) : '✓ fresh';
}

/* ---------- region cards ---------- */
function metric(dl, label, field, wide) {
  const wrap = make('div', wide ? { class: 'wide' } : undefined);
  wrap.append(make('dt', undefined, label));
  const dd = make('dd', { 'data-field': field });
  wrap.append(dd);
  dl.append(wrap);
  return dd;
}

function createRegionView(region) {
  const id = String(region.id);
  const n = ++state.seq;
  const view = { id: id, name: '', status: null, drained: false, weightDirty: false, busy: false, messageTimer: 0, x: 0, y: 0, f: {} };
  const f = view.f;

  const card = make('article', { class: 'card', 'data-region': id, 'aria-labelledby': 'region-title-' + n });
  const head = make('div', { class: 'card-head' });
  f.name = make('h3', { class: 'card-title', id: 'region-title-' + n, 'data-field': 'name' });
  f.id = make('span', { class: 'card-id', 'data-field': 'id' }, id);
  const badge = make('span', { class: 'status' });
  f.statusIcon = make('span', { class: 'status-icon', 'aria-hidden': 'true', 'data-field': 'status-icon' });
  f.status = make('span', { 'data-field': 'status' });
  badge.append(f.statusIcon, f.status);
  f.drainFlag = make('span', { class: 'drain-flag', 'data-field': 'drain-flag', title: 'Drained by an operator: receives no new traffic' }, '◆ drained');
  f.drainFlag.hidden = true;
  head.append(f.name, f.id, badge, f.drainFlag);

  const dl = make('dl', { class: 'metrics' });
  f.heartbeat = metric(dl, 'Heartbeat', 'heartbeat');
  f.registry = metric(dl, 'Registry', 'registry');
  const loadDd = metric(dl, 'Load (in flight / limits)', 'load-cell', true);
  f.loadBar = make('div', { class: 'loadbar', role: 'meter', 'aria-valuemin': '0' });
  f.loadFill = make('div', { class: 'loadbar-fill' });
  f.loadSoft = make('div', { class: 'loadbar-soft', title: 'soft limit' });
  f.loadBar.append(f.loadFill, f.loadSoft);
  f.load = make('span', { 'data-field': 'load' });
  loadDd.append(f.loadBar, f.load);
  f.warm = metric(dl, 'Warm containers', 'warm');
  f.rps = metric(dl, 'Requests/s', 'rps');
  f.p50 = metric(dl, 'Latency p50', 'p50');
  f.p99 = metric(dl, 'Latency p99', 'p99');
  f.errorRate = metric(dl, 'Error rate', 'error-rate');
  f.requests = metric(dl, 'Requests / errors', 'requests');
  f.failovers = metric(dl, 'Failovers', 'failovers');
  f.ejections = metric(dl, 'Ejections', 'ejections');
  f.drained = metric(dl, 'Drained', 'drained');
  f.weight = metric(dl, 'Weight', 'weight');

  const controls = make('div', { class: 'controls' });
  f.drain = make('button', { type: 'button', 'data-action': 'drain' }, 'Drain');
  f.drain.addEventListener('click', () => onDrainClick(view));
  const form = make('form', { class: 'weight-form', novalidate: '' });
  const inputId = 'weight-input-' + n;
  f.weightLabel = make('label', { for: inputId }, 'Weight (0–100)');
  f.weightInput = make('input', { id: inputId, type: 'number', min: '0', max: '100', step: 'any', inputmode: 'decimal', 'data-field': 'weight-input' });
  f.weightSet = make('button', { type: 'submit', 'data-action': 'weight' }, 'Set');
  f.weightInput.addEventListener('input', () => {
    view.weightDirty = true;
  });
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    onWeightSubmit(view);
  });
  form.append(f.weightLabel, f.weightInput, f.weightSet);
  controls.append(f.drain, form);

  f.message = make('p', { class: 'card-message', role: 'status', 'data-field': 'message' });
  card.append(head, dl, controls, f.message);
  view.card = card;

  const marker = makeSvg('g', { class: 'marker', 'data-marker': id });
  f.markerTitle = makeSvg('title');
  f.markerSymbol = makeSvg('path', { class: 'marker-symbol' });
  f.markerLabelBg = makeSvg('rect', { class: 'marker-label-bg', rx: '4' });
  f.markerLabel = makeSvg('text', { class: 'marker-label' });
  marker.append(f.markerTitle, f.markerSymbol, f.markerLabelBg, f.markerLabel);
  view.marker = marker;
  return view;
}

function updateRegionView(view, r, snapshot) {
  const f = view.f;
  const name = String(r.name === undefined || r.name === null ? r.id : r.name);
  const status = String(r.status);
  const info = statusInfo(status);
  const drained = r.drained === true;
  const generatedAt = num(snapshot.generatedAt, Date.now());

  if (view.status !== null && view.status !== status) announce(name + ' (' + view.id + ') is now ' + info.label);
  else if (view.status !== null && view.drained !== drained) announce(name + ' (' + view.id + ') is ' + (drained ? 'drained' : 'no longer drained'));
  const labelChanged = view.status !== status || view.name !== name || view.drained !== drained;
  view.status = status;
  view.name = name;
  view.drained = drained;

  setAttr(view.card, 'data-status', status);
  setAttr(view.card, 'data-drained', drained);
  f.drainFlag.hidden = !drained;
  setText(f.name, name);
  setText(f.statusIcon, info.symbol);
  setText(f.status, info.label);

  const age = r.heartbeatAgeMs;
  setText(f.heartbeat, age === null || age === undefined ? 'never' : fmtDuration(age) + ' ago');
  setAttr(f.heartbeat, 'data-warn', age === null || num(age, 0) > 3000);
  setText(f.registry, registryText(snapshot.registry));
  setAttr(f.registry, 'data-warn', !!(snapshot.registry && snapshot.registry.stale));

  const inFlight = num(r.inFlight, 0);
  const soft = num(r.capacity && r.capacity.soft, 0);
  const hard = num(r.capacity && r.capacity.hard, 0);
  const loadText = inFlight + ' / ' + soft + ' soft / ' + hard + ' hard';
  setText(f.load, loadText);
  const scale = hard > 0 ? hard : Math.max(1, inFlight);
  f.loadFill.style.width = Math.min(100, (inFlight / scale) * 100).toFixed(1) + '%';
  f.loadSoft.style.left = Math.min(100, (soft / scale) * 100).toFixed(1) + '%';
  setAttr(f.loadBar, 'data-level', hard > 0 && inFlight >= hard ? 'full' : soft > 0 && inFlight >= soft ? 'high' : 'ok');
  setAttr(f.loadBar, 'aria-valuemax', hard);
  setAttr(f.loadBar, 'aria-valuenow', inFlight);
  setAttr(f.loadBar, 'aria-valuetext', loadText);
  setAttr(f.loadBar, 'aria-label', 'Load of ' + name);

  setText(f.warm, fmtCount(r.warmContainers));
  setText(f.rps, fmtRate(r.requestsPerSecond));
  setText(f.p50, fmtMs(r.latencyMs && r.latencyMs.p50));
  setText(f.p99, fmtMs(r.latencyMs && r.latencyMs.p99));
  setText(f.errorRate, fmtPercent(r.errorRate));
  setAttr(f.errorRate, 'data-warn', num(r.errorRate, 0) >= 0.05);
  setText(f.requests, fmtCount(r.requestsTotal) + ' / ' + fmtCount(r.errorsTotal));
  setText(f.failovers, fmtCount(r.failoversTotal));
  const ejectedFor = r.ejectedUntil === null || r.ejectedUntil === undefined ? 0 : num(r.ejectedUntil, 0) - generatedAt;
  setText(f.ejections, fmtCount(r.ejectionsTotal) + (ejectedFor > 0 ? ' · ejected, ' + fmtDuration(ejectedFor) + ' left' : ''));
  setAttr(f.ejections, 'data-warn', ejectedFor > 0);
  setText(f.drained, drained ? 'yes' : 'no');
  setText(f.weight, String(num(r.weight, 0)));

  if (!view.busy) {
    setAttr(f.drain, 'data-action', drained ? 'undrain' : 'drain');
    setText(f.drain, drained ? 'Undrain' : 'Drain');
  }
  setAttr(f.drain, 'aria-label', (drained ? 'Undrain ' : 'Drain ') + name);
  setAttr(f.weightInput, 'aria-label', 'Weight of ' + name + ', 0 to 100');
  setAttr(f.weightSet, 'aria-label', 'Set weight of ' + name);
  if (!view.weightDirty && document.activeElement !== f.weightInput) {
    const w = String(num(r.weight, 0));
    if (f.weightInput.value !== w) f.weightInput.value = w;
  }

  const lat = num(r.lat, 0);
  const lon = num(r.lon, 0);
  view.x = ((lon + 180) / 360) * CONFIG.map.width;
  view.y = ((90 - lat) / 180) * CONFIG.map.height;
  // The map shows what routing sees: down wins, then an operator's drain, then health.
  const shown = status !== 'down' && drained ? 'draining' : status;
  const shownLabel = shown === status ? info.label : 'drained';
  setAttr(view.marker, 'data-status', shown);
  setText(f.markerTitle, name + ' (' + view.id + '): ' + info.label + (drained ? ', drained by an operator' : ''));
  setAttr(f.markerSymbol, 'd', Object.prototype.hasOwnProperty.call(CONFIG.shapes, shown) ? CONFIG.shapes[shown] : CONFIG.shapes.up);
  setText(f.markerLabel, view.id.toUpperCase() + ' ' + statusInfo(shown).symbol + ' ' + shownLabel);
  return labelChanged;
}

function renderRegions(snapshot) {
  if (!snapshot || typeof snapshot !== 'object' || !Array.isArray(snapshot.regions)) return;
  const generatedAt = num(snapshot.generatedAt, 0);
  if (generatedAt !== 0 && generatedAt < state.lastGeneratedAt) return;
  state.lastGeneratedAt = generatedAt;
  renderRegistry(snapshot.registry);
  setText(ui.updated, 'Updated ' + fmtClock(generatedAt || Date.now()));

  let relayout = false;
  const seen = new Set();
  snapshot.regions.forEach((region, index) => {
    if (!region || typeof region !== 'object') return;
    const id = String(region.id);
    if (seen.has(id)) return;
    seen.add(id);
    let view = state.views.get(id);
    if (view === undefined) {
      view = createRegionView(region);
      state.views.set(id, view);
      ui.markers.append(view.marker);
      relayout = true;
    }
    if (updateRegionView(view, region, snapshot)) relayout = true;
    const at = ui.regions.children[index];
    if (at !== view.card) ui.regions.insertBefore(view.card, at === undefined ? null : at);
  });
  for (const [id, view] of state.views) {
    if (seen.has(id)) continue;
    view.card.remove();
    view.marker.remove();
    state.views.delete(id);
    relayout = true;
  }
  if (relayout) scheduleMapLayout();
}

/* ---------- map markers and labels ---------- */
function scheduleMapLayout() {
  if (state.layoutPending) return;
  state.layoutPending = true;
  requestAnimationFrame(() => {
    state.layoutPending = false;
    layoutMap();
  });
}
function overlap(a, b) {
  const w = Math.min(a.x + a.w, b.x + b.w) - Math.max(a.x, b.x);
  const h = Math.min(a.y + a.h, b.y + b.h) - Math.max(a.y, b.y);
  return w > 0 && h > 0 ? w * h : 0;
}
/** Keeps markers and labels a constant size on screen and places each label where it collides least. */
function layoutMap() {
  const width = ui.map.getBoundingClientRect().width;
  if (!(width > 0)) return;
  const m = CONFIG.map;
  const unitsPerPx = m.view.width / width;
  const scale = Math.max(0.9, (8 * unitsPerPx) / 10);
  const radius = 11 * scale;
  const gap = 3 * unitsPerPx;
  const padX = 4 * unitsPerPx;
  const padY = 1.5 * unitsPerPx;
  const fontSize = (width < 500 ? 11 : 12.5) * unitsPerPx;
  const views = Array.from(state.views.values()).sort((a, b) => a.x - b.x);
  const taken = views.map((v) => ({ x: v.x - radius, y: v.y - radius, w: 2 * radius, h: 2 * radius }));
  const bounds = { x: m.view.x, y: m.view.y, w: m.view.width, h: m.view.height };
  for (const v of views) {
    const f = v.f;
    f.markerSymbol.setAttribute('transform', 'translate(' + v.x.toFixed(1) + ' ' + v.y.toFixed(1) + ') scale(' + scale.toFixed(3) + ')');
    f.markerLabel.setAttribute('font-size', fontSize.toFixed(1));
    f.markerLabel.setAttribute('x', '0');
    f.markerLabel.setAttribute('y', '0');
    const bb = f.markerLabel.getBBox();
    const w = bb.width + 2 * padX;
    const h = bb.height + 2 * padY;
    const d = radius + gap;
    const candidates = [
      [d, -h / 2], [-d - w, -h / 2], [-w / 2, -d - h], [-w / 2, d],
      [d * 0.7, d * 0.7], [d * 0.7, -d * 0.7 - h], [-d * 0.7 - w, d * 0.7], [-d * 0.7 - w, -d * 0.7 - h],
    ];
    let best = null;
    let bestCost = Infinity;
    for (const [dx, dy] of candidates) {
      const box = { x: v.x + dx, y: v.y + dy, w: w, h: h };
      const inside = box.x >= bounds.x && box.y >= bounds.y && box.x + w <= bounds.x + bounds.w && box.y + h <= bounds.y + bounds.h;
      let cost = inside ? 0 : 1e9;
      for (const other of taken) cost += overlap(box, other);
      if (cost < bestCost) {
        best = box;
        bestCost = cost;
      }
      if (cost === 0) break;
    }
    taken.push(best);
    f.markerLabelBg.setAttribute('x', best.x.toFixed(1));
    f.markerLabelBg.setAttribute('y', best.y.toFixed(1));
    f.markerLabelBg.setAttribute('width', w.toFixed(1));
    f.markerLabelBg.setAttribute('height', h.toFixed(1));
    f.markerLabelBg.setAttribute('stroke-width', (1.2 * unitsPerPx).toFixed(2));
    f.markerLabel.setAttribute('x', (best.x + padX - bb.x).toFixed(1));
    f.markerLabel.setAttribute('y', (best.y + padY - bb.y).toFixed(1));
  }
}

/* ---------- events ---------- */
function eventKey(e) {
  return num(e.at, 0) + '|' + String(e.region) + '|' + String(e.kind) + '|' + String(e.cause);
}
function createEventRow(e) {
  const row = make('tr', { 'data-kind': String(e.kind) });
  const timeCell = make('td');
  const at = num(e.at, 0);
  timeCell.append(make('time', { datetime: new Date(at).toISOString() }, fmtClock(at)));
  row.append(timeCell, make('td', undefined, e.region === null || e.region === undefined ? '—' : String(e.region)), make('td', undefined, String(e.kind)), make('td', undefined, String(e.cause)));
  return row;
}
function renderEvents(list, replace) {
  if (!Array.isArray(list)) return;
  const merged = new Map();
  for (const e of replace ? list : state.events.concat(list)) {
    if (e && typeof e === 'object') merged.set(eventKey(e), e);
  }
  const events = Array.from(merged.values()).sort((a, b) => num(b.at, 0) - num(a.at, 0)).slice(0, MAX_EVENTS);
  state.events = events;
  const keep = new Set();
  events.forEach((e, index) => {
    const key = eventKey(e);
    keep.add(key);
    let row = state.eventRows.get(key);
    if (row === undefined) {
      row = createEventRow(e);
      state.eventRows.set(key, row);
    }
    const at = ui.eventsBody.children[index];
    if (at !== row) ui.eventsBody.insertBefore(row, at === undefined ? null : at);
  });
  for (const [key, row] of state.eventRows) {
    if (keep.has(key)) continue;
    row.remove();
    state.eventRows.delete(key);
  }
  ui.eventsEmpty.hidden = events.length > 0;
}

/* ---------- operator actions ---------- */
function setMessage(view, text, kind) {
  clearTimeout(view.messageTimer);
  setText(view.f.message, text);
  setAttr(view.f.message, 'data-kind', kind || 'info');
  if (text !== '' && kind !== 'error') view.messageTimer = setTimeout(() => setMessage(view, ''), 6000);
}
function describeError(err) {
  if (err instanceof ApiError) return err.message + ' (' + err.code + (err.requestId ? ', request ' + err.requestId : '') + ')';
  return 'network error: ' + (err && err.message ? err.message : String(err));
}
async function runAction(view, button, request, done) {
  if (view.busy) return;
  view.busy = true;
  button.disabled = true;
  setMessage(view, 'Sending…');
  try {
    const result = await request();
    setMessage(view, done(result));
    await refreshRegions();
  } catch (err) {
    if (!(err instanceof AuthRequired)) setMessage(view, 'Failed: ' + describeError(err), 'error');
  } finally {
    view.busy = false;
    button.disabled = false;
  }
}
function onDrainClick(view) {
  const action = view.f.drain.getAttribute('data-action') === 'undrain' ? 'undrain' : 'drain';
  runAction(view, view.f.drain, () => api('POST', '/api/regions/' + encodeURIComponent(view.id) + '/' + action), (res) =>
    res && res.drained === false ? view.name + ' undrained' : view.name + ' drained');
}
function onWeightSubmit(view) {
  const input = view.f.weightInput;
  const raw = input.value.trim();
  const weight = Number(raw);
  if (raw === '' || !Number.isFinite(weight) || weight < 0 || weight > 100) {
    setMessage(view, 'Weight must be a number from 0 to 100.', 'error');
    input.focus();
    return;
  }
  runAction(view, view.f.weightSet, () => api('PUT', '/api/regions/' + encodeURIComponent(view.id) + '/weight', { weight: weight }), (res) => {
    view.weightDirty = false;
    return 'Weight of ' + view.name + ' set to ' + (res && typeof res.weight === 'number' ? res.weight : weight);
  });
}
async function refreshRegions() {
  try {
    renderRegions(await api('GET', '/api/regions'));
  } catch (_) {
    /* the stream will bring the next snapshot */
  }
}

/* ---------- live stream (fetch + reader: EventSource cannot send Authorization) ---------- */
function handleStreamBlock(block) {
  let event = 'message';
  const data = [];
  for (const line of block.split(/\r\n|\r|\n/)) {
    if (line === '' || line.charAt(0) === ':') continue;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.charAt(0) === ' ') value = value.slice(1);
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
  }
  if (data.length === 0) return;
  let payload;
  try {
    payload = JSON.parse(data.join('\n'));
  } catch (_) {
    return;
  }
  if (event === 'regions') {
    state.attempt = 0;
    setConnection('live', '● Live');
    showNotice(null);
    renderRegions(payload);
  } else if (event === 'events') {
    renderEvents(payload && payload.events, false);
  }
}
async function readStream(controller) {
  const res = await fetch('/api/stream', {
    headers: { Authorization: 'Bearer ' + state.token, Accept: 'text/event-stream' },
    cache: 'no-store',
    credentials: 'omit',
    signal: controller.signal,
  });
  if (controller !== state.stream) return;
  if (res.status === 401) {
    requireToken('invalid');
    throw new AuthRequired('unauthorized');
  }
  if (!res.ok || !res.body) throw new Error('HTTP ' + res.status);
  state.lastMessageAt = Date.now();
  if (state.streamOpenedOnce) {
    api('GET', '/api/events?limit=' + MAX_EVENTS).then((r) => renderEvents(r && r.events, false), () => undefined);
  }
  state.streamOpenedOnce = true;
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const chunk = await reader.read();
    if (chunk.done || controller !== state.stream) return;
    state.lastMessageAt = Date.now();
    buffer += chunk.value;
    let match;
    while ((match = /\r\n\r\n|\n\n|\r\r/.exec(buffer)) !== null) {
      const block = buffer.slice(0, match.index);
      buffer = buffer.slice(match.index + match[0].length);
      handleStreamBlock(block);
    }
    if (buffer.length > 8000000) throw new Error('oversized stream message');
  }
}
function connectStream() {
  clearTimeout(state.reconnectTimer);
  if (state.token === null) return;
  const controller = new AbortController();
  state.stream = controller;
  if (ui.connection.getAttribute('data-state') !== 'live') setConnection('connecting', '… Connecting');
  readStream(controller).then(
    () => {
      if (controller === state.stream) scheduleReconnect('the stream ended');
    },
    (err) => {
      if (controller !== state.stream || err instanceof AuthRequired) return;
      scheduleReconnect(err && err.message ? err.message : 'stream error');
    },
  );
}
function stopStream() {
  clearTimeout(state.reconnectTimer);
  const controller = state.stream;
  state.stream = null;
  if (controller !== null) controller.abort();
}
function scheduleReconnect(reason) {
  stopStream();
  const base = Math.min(RECONNECT_MAX_MS, 500 * Math.pow(2, state.attempt));
  const delay = Math.round(base * (0.8 + Math.random() * 0.4));
  state.attempt += 1;
  setConnection(state.attempt > 4 ? 'offline' : 'reconnecting', '↻ Reconnecting in ' + Math.max(1, Math.round(delay / 1000)) + ' s (' + reason + ')');
  state.reconnectTimer = setTimeout(connectStream, delay);
}
setInterval(() => {
  if (state.stream !== null && state.lastMessageAt !== 0 && Date.now() - state.lastMessageAt > STREAM_SILENCE_MS) {
    scheduleReconnect('no updates for ' + STREAM_SILENCE_MS / 1000 + ' s');
  }
}, 1000);

/* ---------- lifecycle ---------- */
function clearData() {
  for (const view of state.views.values()) {
    view.card.remove();
    view.marker.remove();
  }
  state.views.clear();
  for (const row of state.eventRows.values()) row.remove();
  state.eventRows.clear();
  state.events = [];
  state.lastGeneratedAt = 0;
  setText(ui.updated, '');
  setAttr(ui.stale, 'data-state', 'unknown');
  setText(ui.stale, 'Registry: unknown');
}
function requireToken(reason) {
  state.session += 1;
  stopStream();
  clearData();
  showNotice(null);
  if (reason === 'invalid') storeToken(null);
  state.token = null;
  ui.dashboard.hidden = true;
  ui.forget.hidden = true;
  ui.auth.hidden = false;
  setAttr(ui.auth, 'data-reason', reason);
  setText(ui.authReason, reason === 'invalid'
    ? 'The admin token was rejected (missing, wrong or rotated). Paste a valid token to continue.'
    : 'This dashboard reads the admin API, which needs the router\'s admin token. Paste it to continue.');
  setConnection('auth', reason === 'invalid' ? '🔒 Token invalid' : '🔒 Token required');
}
async function start(token) {
  state.session += 1;
  const session = state.session;
  state.token = token;
  state.attempt = 0;
  state.streamOpenedOnce = false;
  ui.auth.hidden = true;
  ui.dashboard.hidden = false;
  ui.forget.hidden = false;
  setConnection('connecting', '… Loading');
  const [regions, events] = await Promise.allSettled([api('GET', '/api/regions'), api('GET', '/api/events?limit=' + MAX_EVENTS)]);
  if (session !== state.session) return;
  const failures = [];
  if (regions.status === 'fulfilled') renderRegions(regions.value);
  else failures.push(regions.reason);
  if (events.status === 'fulfilled') renderEvents(events.value && events.value.events, true);
  else failures.push(events.reason);
  if (failures.some((err) => err instanceof AuthRequired)) return;
  showNotice(failures.length === 0 ? null : 'Could not load the dashboard data: ' + describeError(failures[0]) + '. Retrying over the live stream.');
  connectStream();
}

ui.authForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const token = ui.tokenInput.value.trim();
  if (token === '') {
    setText(ui.authReason, 'Enter the admin token (EDGE_ADMIN_TOKEN of the router).');
    ui.tokenInput.focus();
    return;
  }
  ui.tokenInput.value = '';
  storeToken(token);
  start(token);
});
ui.forget.addEventListener('click', () => {
  storeToken(null);
  requireToken('required');
});
if (typeof ResizeObserver === 'function') new ResizeObserver(scheduleMapLayout).observe(ui.map);
else window.addEventListener('resize', scheduleMapLayout);

const initialToken = takeTokenFromFragment() || readStoredToken();
if (initialToken) start(initialToken);
else requireToken('required');
`;

/** The one inline script, exactly as the page carries it (its hash is what the CSP allows). */
const INLINE_SCRIPT = `\nconst CONFIG = ${JSON.stringify(CLIENT_CONFIG)};\n${SCRIPT}`;

/**
 * The policy the page is written for; the page also declares it in a <meta> tag, so it holds even
 * when the server sends no header. Only this exact script may run (CSP Level 2 hash source: no
 * 'unsafe-inline', so an injected script or event handler is refused); inline style is the one
 * allowance, and it cannot run code.
 */
export const DASHBOARD_CONTENT_SECURITY_POLICY =
  `default-src 'self'; script-src 'sha256-${createHash('sha256').update(INLINE_SCRIPT).digest('base64')}'; ` +
  "style-src 'unsafe-inline'; img-src data:; connect-src 'self'; base-uri 'none'; form-action 'none'";

/** The whole dashboard document; identical for every request (no data, no secrets). */
export function dashboardHtml(): string {
  return (
    '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n' +
    '<meta name="viewport" content="width=device-width, initial-scale=1">\n' +
    `<meta http-equiv="Content-Security-Policy" content="${DASHBOARD_CONTENT_SECURITY_POLICY}">\n` +
    '<meta name="referrer" content="no-referrer">\n' +
    '<meta name="color-scheme" content="light dark">\n' +
    '<link rel="icon" href="data:,">\n' +
    '<title>Edge router dashboard</title>\n' +
    `<style>${STYLE}</style>\n</head>\n<body>\n` +
    BODY.replace('{{MAP}}', () => WORLD_MAP_SVG) +
    `<script>${INLINE_SCRIPT}</script>\n</body>\n</html>\n`
  );
}
