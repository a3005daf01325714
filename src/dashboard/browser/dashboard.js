// @ts-check
/*
 * The dashboard's script, served inline by the admin listener (src/dashboard/page.ts) and checked
 * by tsc with the DOM's types (tsconfig.browser.json). Rules: data only ever reaches the DOM
 * through textContent / setAttribute; the token only ever goes into the Authorization header.
 */
'use strict';

/**
 * What the server tells the page about its map and markers, as JSON in the page (never code).
 * @typedef {{ map: { width: number, height: number, view: { x: number, y: number, width: number, height: number }, markersId: string }, shapes: Record<string, string> }} DashboardConfig
 */
/** @type {DashboardConfig} */
const CONFIG = JSON.parse(mustFind(document.getElementById('dashboard-config'), '#dashboard-config').textContent || '{}');
const TOKEN_KEY = 'edge-router.admin-token';
/**
 * What the router takes as its admin token (RFC 6750 b64token, checked at its start). Anything
 * else can never be right, and fetch cannot even send what is not Latin-1 (a "…" copied with a
 * link): it threw before any request, so the page retried for ever instead of asking again.
 */
const TOKEN_SYNTAX = /^[A-Za-z0-9\-._~+/]+=*$/;
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

/**
 * @template {Element} T
 * @param {T | null} node
 * @param {string} what
 * @returns {T}
 */
function mustFind(node, what) {
  if (node === null) throw new Error('the page has no ' + what);
  return node;
}
/** @param {string} id */
const byId = (id) => mustFind(document.getElementById(id), '#' + id);
/** @param {string} sel */
const q = (sel) => mustFind(document.querySelector(sel), sel);
const ui = {
  auth: byId('auth'), authReason: byId('auth-reason'), authForm: byId('auth-form'),
  tokenInput: /** @type {HTMLInputElement} */ (byId('token-input')),
  dashboard: byId('dashboard'), regions: byId('regions'), eventsBody: byId('events-body'), eventsEmpty: byId('events-empty'),
  stale: q('[data-testid="stale"]'), connection: q('[data-testid="connection"]'), updated: q('[data-testid="updated"]'),
  notice: byId('notice'), announce: byId('announce'), forget: byId('forget-token'),
  certsPanel: byId('certs-panel'), certsBody: byId('certs-body'), certsEmpty: byId('certs-empty'), certsMore: byId('certs-more'), certsPaused: byId('certs-paused'),
  certsUnreadable: byId('certs-unreadable'),
  map: q('.world-map'), markers: byId(CONFIG.map.markersId),
};

const state = {
  /** @type {string | null} */
  token: null,
  session: 0,
  views: new Map(),
  /** @type {any[]} */
  events: [],
  eventRows: new Map(),
  /** The local day (YYYY-MM-DD) the event rows were dated against: rows show a date only off it. */
  eventsDay: '',
  lastGeneratedAt: 0,
  /** @type {AbortController | null} */
  stream: null,
  streamOpenedOnce: false,
  attempt: 0,
  reconnectTimer: 0,
  /** performance.now() at the stream's last message: a step of the wall clock is no silence of the stream's. */
  lastMessageAt: 0,
  layoutPending: false,
  narrowMap: false,
  seq: 0,
};

class AuthRequired extends Error {}
/** The router refused the live stream 429: as many dashboards are open as it serves (its message says how many). */
class StreamsFull extends Error {}
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
/** A time in ms; a dash where there is none (null: a region that has served nothing yet). */
function fmtMs(n) {
  return Number.isFinite(n) ? (n < 10 ? n.toFixed(1) : String(Math.round(n))) + ' ms' : '—';
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
/** The local date of a moment, as YYYY-MM-DD. */
function localDay(at) {
  const d = new Date(num(at, 0));
  return d.getFullYear() + '-' + pad2(d.getMonth() + 1) + '-' + pad2(d.getDate());
}
/**
 * A moment as HH:MM:SS (local) when it is on `today`, else with its date before it: the event log
 * keeps its last entries for as long as they are the last, days or weeks, and a time alone read
 * as today's.
 */
function fmtStamp(at, today) {
  const day = localDay(at);
  return (day === today ? '' : day + ' ') + fmtClock(at);
}
function statusInfo(status) {
  return Object.prototype.hasOwnProperty.call(STATUS, status) ? STATUS[status] : { symbol: '?', label: String(status) };
}

/* ---------- token ---------- */
function readStoredToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}
function storeToken(token) {
  try {
    if (token === null) sessionStorage.removeItem(TOKEN_KEY);
    else sessionStorage.setItem(TOKEN_KEY, token);
  } catch {
    /* storage unavailable: the token lives in memory for this page only */
  }
}
/**
 * The token in a fragment such as `token=…&view=map`, and the fragment without it. Not
 * URLSearchParams: form decoding turns the `+` of a base64 token into a space. Only
 * percent-escapes are decoded; a malformed one gives no token (but is still taken out).
 * @param {string} fragment
 * @returns {{ token: string | null, rest: string } | null} null when there is no token= part
 */
function splitTokenFragment(fragment) {
  const parts = fragment.split('&');
  const at = parts.findIndex((part) => part.startsWith('token='));
  if (at === -1) return null;
  let token = null;
  try {
    token = decodeURIComponent(parts[at].slice('token='.length)).trim();
  } catch {
    /* a malformed escape: no token */
  }
  const rest = parts.filter((part) => !part.startsWith('token=')).join('&');
  return { token: token === '' ? null : token, rest: rest };
}
/** Moves #token=… out of the address bar (and history) into sessionStorage. */
function takeTokenFromFragment() {
  const fragment = location.hash.replace(/^#/, '');
  if (fragment === '') return null;
  const split = splitTokenFragment(fragment);
  if (split === null) return null;
  history.replaceState(history.state, '', location.pathname + location.search + (split.rest === '' ? '' : '#' + split.rest));
  if (split.token === null) return null;
  storeToken(split.token);
  return split.token;
}

/* ---------- API ---------- */
/**
 * How long a call may take, answer included. A router answers within its registry's command
 * timeout (2 s) and a write's wait for every worker (2 s): past this the connection is as good as
 * lost (a network that drops packets without a word), and without a bound the page sat at
 * "Loading…", or a card at "Sending…" refusing every press, until the OS gave up minutes later.
 */
const API_TIMEOUT_MS = 10000;
async function api(method, path, body) {
  const session = state.session;
  const headers = { Authorization: 'Bearer ' + state.token, Accept: 'application/json' };
  /** @type {RequestInit} */
  const init = { method: method, headers: headers, cache: 'no-store', credentials: 'omit', signal: AbortSignal.timeout(API_TIMEOUT_MS) };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  /** @type {any} */
  let data;
  try {
    data = await res.json();
  } catch {
    data = null; // not JSON: the status alone says what happened
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
  // A write committed that some worker (--workers N) has not confirmed within 2 s: not yet routed by everywhere.
  if (res.headers.get('x-edge-applied') === 'pending' && data) data.pending = true;
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
/** @param {string[]} changes what one update changed, each said in turn (one region's replaced the others'). */
function announce(changes) {
  if (changes.length > 0) ui.announce.textContent = changes.join('. ');
}
function renderRegistry(registry) {
  if (!registry || typeof registry !== 'object') return;
  const kind = String(registry.kind || 'registry');
  if (typeof registry.dataLostForMs === 'number') {
    setAttr(ui.stale, 'data-state', 'lost');
    setText(ui.stale, '⚠ Registry (' + kind + ') lost its data ' + fmtDuration(registry.dataLostForMs) + ' ago: routing on the last-known state while it is written back');
  } else if (registry.stale && registry.contactAt === null) {
    // Never answered since the router started: there is no "stale for" (it read 0.0 s for ever),
    // and the router knows no function yet (it answers them 503 until it reads the directory).
    setAttr(ui.stale, 'data-state', 'stale');
    setText(ui.stale, '⚠ Registry (' + kind + ') not reached since the router started: no function known yet');
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
  if (registry.stale && registry.contactAt === null) return '⚠ never reached';
  return registry.stale ? '⚠ stale ' + fmtDuration(registry.staleForMs) : '✓ fresh';
}

/* ---------- region cards ---------- */
/**
 * `api 1/3, web 0/1`: each function's idle containers out of all it has here, busiest first.
 * @param {unknown} list
 */
function functionsText(list) {
  if (!Array.isArray(list) || list.length === 0) return '—';
  return list
    .filter((f) => f && typeof f === 'object')
    .map((f) => String(f.fn) + ' ' + fmtCount(f.idle) + '/' + fmtCount(num(f.idle, 0) + num(f.busy, 0)))
    .join(', ');
}

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
  const view = { id: id, name: '', status: null, drained: false, ejected: false, weight: 0, weightDirty: false, busy: false, armed: 0, messageTimer: 0, x: 0, y: 0, px: 0, py: 0, label: '', word: '', f: {} };
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
  f.ejectFlag = make('span', { class: 'drain-flag eject-flag', 'data-field': 'eject-flag', title: 'Ejected after repeated failures: receives no traffic until the ejection ends' }, '✕ ejected');
  head.append(f.name, f.id, badge, f.drainFlag, f.ejectFlag);

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
  f.functions = metric(dl, 'Busiest functions (idle / all containers)', 'functions', true);
  f.rps = metric(dl, 'Requests/s', 'rps');
  f.p50 = metric(dl, 'Latency p50', 'p50');
  f.p99 = metric(dl, 'Latency p99', 'p99');
  f.service = metric(dl, 'Service p50 (queueing excluded)', 'service');
  f.errorRate = metric(dl, 'Error rate', 'error-rate');
  f.requests = metric(dl, 'Requests / errors', 'requests');
  f.failovers = metric(dl, 'Failovers', 'failovers');
  f.ejections = metric(dl, 'Ejections', 'ejections');
  f.drained = metric(dl, 'Drained', 'drained');
  f.weight = metric(dl, 'Weight', 'weight');

  const controls = make('div', { class: 'controls' });
  f.drain = make('button', { type: 'button', 'data-action': 'drain' }, 'Drain');
  f.drain.addEventListener('click', (event) => onDrainClick(view, event));
  f.drain.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && view.armed) disarm(view);
    // A held Enter repeats the button's click: the ask and its confirmation from one key press.
    // Refused here (no keypress, so no click); a second, deliberate press still confirms.
    if (event.key === 'Enter' && event.repeat) event.preventDefault();
  });
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

/** @param {string[]} changes where what changed is said, for the screen reader's announcement */
function updateRegionView(view, r, snapshot, changes) {
  const f = view.f;
  const name = String(r.name === undefined || r.name === null ? r.id : r.name);
  const status = String(r.status);
  const info = statusInfo(status);
  const drained = r.drained === true;
  const generatedAt = num(snapshot.generatedAt, Date.now());
  const ejectedFor = r.ejectedUntil === null || r.ejectedUntil === undefined ? 0 : num(r.ejectedUntil, 0) - generatedAt;
  const ejected = ejectedFor > 0;

  const who = name + ' (' + view.id + ') is ';
  if (view.status !== null && view.status !== status) changes.push(who + 'now ' + info.label);
  if (view.status !== null && view.drained !== drained) changes.push(who + (drained ? '' : 'no longer ') + 'drained');
  if (view.status !== null && view.ejected !== ejected) changes.push(who + (ejected ? '' : 'no longer ') + 'ejected');
  const labelChanged = view.status !== status || view.name !== name || view.drained !== drained || view.ejected !== ejected;
  view.status = status;
  view.name = name;
  view.drained = drained;
  view.ejected = ejected;

  setAttr(view.card, 'data-status', status);
  setAttr(view.card, 'data-drained', drained);
  f.drainFlag.hidden = !drained;
  f.ejectFlag.hidden = !ejected;
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
  setText(f.functions, functionsText(r.busiestFunctions));
  setText(f.rps, fmtRate(r.requestsPerSecond));
  setText(f.p50, fmtMs(r.latencyMs && r.latencyMs.p50));
  setText(f.p99, fmtMs(r.latencyMs && r.latencyMs.p99));
  setText(f.service, fmtMs(r.serviceMs));
  setText(f.errorRate, fmtPercent(r.errorRate));
  setAttr(f.errorRate, 'data-warn', num(r.errorRate, 0) >= 0.05);
  setText(f.requests, fmtCount(r.requestsTotal) + ' / ' + fmtCount(r.errorsTotal));
  setText(f.failovers, fmtCount(r.failoversTotal));
  setText(f.ejections, fmtCount(r.ejectionsTotal) + (ejected ? ' · ejected, ' + fmtDuration(ejectedFor) + ' left' : ''));
  setAttr(f.ejections, 'data-warn', ejected);
  setText(f.drained, drained ? 'yes' : 'no');
  view.weight = num(r.weight, 0);
  setText(f.weight, String(view.weight));

  if (view.armed && drained) disarm(view); // drained meanwhile (another operator): nothing to confirm
  showDrain(view);
  setAttr(f.weightInput, 'aria-label', 'Weight of ' + name + ', 0 to 100');
  setAttr(f.weightSet, 'aria-label', 'Set weight of ' + name);
  if (!view.weightDirty && document.activeElement !== f.weightInput && f.weightInput.value !== String(view.weight)) f.weightInput.value = String(view.weight);

  const lat = num(r.lat, 0);
  const lon = num(r.lon, 0);
  view.x = ((lon + 180) / 360) * CONFIG.map.width;
  view.y = ((90 - lat) / 180) * CONFIG.map.height;
  // The map shows what routing sees: down wins, then an ejection (no traffic either: it read "up"
  // while it lasted), then an operator's drain, then health.
  const shown = status === 'down' || ejected ? 'down' : drained ? 'draining' : status;
  const shownLabel = shown === status ? info.label : ejected ? 'ejected' : 'drained';
  setAttr(view.marker, 'data-status', shown);
  setText(f.markerTitle, name + ' (' + view.id + '): ' + info.label + (drained ? ', drained by an operator' : '') + (ejected ? ', ejected' : ''));
  setAttr(f.markerSymbol, 'd', Object.prototype.hasOwnProperty.call(CONFIG.shapes, shown) ? CONFIG.shapes[shown] : CONFIG.shapes.up);
  view.label = view.id.toUpperCase() + ' ' + statusInfo(shown).symbol;
  view.word = shownLabel;
  setText(f.markerLabel, markerText(view));
  return labelChanged;
}

/**
 * fromStream: the live stream's snapshots come in order (and a new stream's after the last one's),
 * so they are drawn as they come: ordered by the router's wall clock, a clock stepped back froze
 * the page for as long while it said Live. An action's answer (GET /api/regions) may cross the
 * stream's next snapshot: it is drawn only if not older, and while no stream runs it shows as old.
 */
function renderRegions(snapshot, fromStream) {
  if (!snapshot || typeof snapshot !== 'object' || !Array.isArray(snapshot.regions)) return;
  const generatedAt = num(snapshot.generatedAt, 0);
  if (!fromStream && generatedAt !== 0 && generatedAt < state.lastGeneratedAt) return;
  state.lastGeneratedAt = generatedAt;
  setAttr(document.body, 'data-old', false);
  renderRegistry(snapshot.registry);
  setText(ui.updated, 'Updated ' + fmtClock(generatedAt || Date.now()));

  let relayout = false;
  const seen = new Set();
  /** @type {string[]} */
  const changes = [];
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
    if (updateRegionView(view, region, snapshot, changes)) relayout = true;
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
  announce(changes);
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
/**
 * Where each marker is drawn (px, py): at its place, unless another's box comes nearer than `min`
 * (Atlanta and New York on a phone, 12 px apart for markers 18 px wide): then the two move apart,
 * each half the way, along the axis that needs less. A few rounds settle a cluster.
 */
function spreadMarkers(views, min) {
  for (const v of views) {
    v.px = v.x;
    v.py = v.y;
  }
  for (let round = 0; round < 10; round++) {
    let moved = false;
    for (const a of views) {
      for (const b of views) {
        const dx = b.px - a.px;
        const dy = b.py - a.py;
        if (a === b || Math.abs(dx) >= min || Math.abs(dy) >= min) continue;
        const alongX = min - Math.abs(dx) <= min - Math.abs(dy);
        const push = (alongX ? min - Math.abs(dx) : min - Math.abs(dy)) / 2;
        const sign = (alongX ? dx : dy) < 0 ? -1 : 1;
        if (alongX) {
          a.px -= sign * push;
          b.px += sign * push;
        } else {
          a.py -= sign * push;
          b.py += sign * push;
        }
        moved = true;
      }
    }
    if (!moved) return;
  }
}
/**
 * A map narrower than 500 px (a phone's) has no room for Atlanta's and New York's labels with their
 * status words: there the shape says it (the legend below, the card and the marker's title in words).
 */
function markerText(view) {
  return state.narrowMap ? view.label : view.label + ' ' + view.word;
}
/** Keeps markers and labels a constant size on screen, apart, and places each label where it collides least. */
function layoutMap() {
  const width = ui.map.getBoundingClientRect().width;
  if (!(width > 0)) return;
  state.narrowMap = width < 500;
  const m = CONFIG.map;
  const unitsPerPx = m.view.width / width;
  const scale = Math.max(0.9, (8 * unitsPerPx) / 10);
  const radius = 11.5 * scale; // the widest shape's (the diamond's) half width
  const gap = 3 * unitsPerPx;
  const padX = 4 * unitsPerPx;
  const padY = 1.5 * unitsPerPx;
  const fontSize = (width < 500 ? 11 : 12.5) * unitsPerPx;
  const views = Array.from(state.views.values()).sort((a, b) => a.x - b.x);
  spreadMarkers(views, 2 * radius + gap);
  const taken = views.map((v) => ({ x: v.px - radius, y: v.py - radius, w: 2 * radius, h: 2 * radius }));
  const bounds = { x: m.view.x, y: m.view.y, w: m.view.width, h: m.view.height };
  for (const v of views) {
    const f = v.f;
    f.markerSymbol.setAttribute('transform', 'translate(' + v.px.toFixed(1) + ' ' + v.py.toFixed(1) + ') scale(' + scale.toFixed(3) + ')');
    setText(f.markerLabel, markerText(v));
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
    /** @type {{ x: number, y: number, w: number, h: number }} */
    let best = { x: v.px, y: v.py, w: w, h: h };
    let bestCost = Infinity;
    for (const [dx, dy] of candidates) {
      const box = { x: v.px + dx, y: v.py + dy, w: w, h: h };
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
function createEventRow(e, today) {
  const row = make('tr', { 'data-kind': String(e.kind) });
  const timeCell = make('td');
  const at = num(e.at, 0);
  timeCell.append(make('time', { datetime: new Date(at).toISOString() }, fmtStamp(at, today)));
  row.append(timeCell, make('td', undefined, e.region === null || e.region === undefined ? '—' : String(e.region)), make('td', undefined, String(e.kind)), make('td', undefined, String(e.cause)));
  return row;
}
const NO_EVENTS_TEXT = 'No events yet.';
/**
 * The event log could not be read (the registry is down, say): the panel says so. Its empty
 * state said "No events yet.", and the page's notice went at the stream's first message.
 * @param {unknown} err
 */
function eventsUnavailable(err) {
  setAttr(ui.eventsEmpty, 'data-state', 'unavailable');
  // Also over rows read before (it stands above them): they are the last read, not the log as it stands.
  const rows = state.events.length > 0 ? ' The rows below are the last read; new events' : ' Events';
  setText(ui.eventsEmpty, 'The event log could not be read: ' + describeError(err) + '.' + rows + ' appear here once it can be.');
  ui.eventsEmpty.hidden = false;
}
function renderEvents(list, replace) {
  if (!Array.isArray(list)) return;
  setAttr(ui.eventsEmpty, 'data-state', 'read');
  setText(ui.eventsEmpty, NO_EVENTS_TEXT);
  const merged = new Map();
  for (const e of replace ? list : state.events.concat(list)) {
    if (e && typeof e === 'object') merged.set(eventKey(e), e);
  }
  const events = Array.from(merged.values()).sort((a, b) => num(b.at, 0) - num(a.at, 0)).slice(0, MAX_EVENTS);
  state.events = events;
  placeEventRows();
  ui.eventsEmpty.hidden = events.length > 0;
}
/** The rows of state.events, in order: made for new events, dropped for gone ones, all made anew once the local day has changed. */
function placeEventRows() {
  // Past midnight every row is dated anew: one shown as HH:MM:SS was of a day that is now yesterday.
  const today = localDay(Date.now());
  if (today !== state.eventsDay) {
    for (const row of state.eventRows.values()) row.remove();
    state.eventRows.clear();
    state.eventsDay = today;
  }
  const keep = new Set();
  state.events.forEach((e, index) => {
    const key = eventKey(e);
    keep.add(key);
    let row = state.eventRows.get(key);
    if (row === undefined) {
      row = createEventRow(e, today);
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
}

/* ---------- certificates (ACME) ---------- */
const CERTIFICATES_EVERY_MS = 30000;
/** Domains shown in the certificates panel (a page of the admin API's listing). */
const CERTIFICATES_PAGE = 200;
/** A date from the API as "YYYY-MM-DD HH:MM" (UTC), or the text as it came when it is no date. */
function fmtDate(text) {
  const at = Date.parse(String(text));
  return Number.isFinite(at) ? new Date(at).toISOString().slice(0, 16).replace('T', ' ') : String(text);
}
function certificateRow(name, stateText, until, next, detail) {
  const row = make('tr', { 'data-domain': String(name) });
  row.append(make('td', undefined, String(name)), make('td', undefined, stateText), make('td', undefined, until), make('td', undefined, next), make('td', undefined, detail));
  return row;
}
function renderCertificates(data) {
  const on = data !== null && typeof data === 'object' && data.acme === true;
  ui.certsPanel.hidden = !on;
  ui.certsUnreadable.hidden = true;
  if (!on) return;
  const certificates = Array.isArray(data.certificates) ? data.certificates : [];
  const failures = Array.isArray(data.failures) ? data.failures : [];
  const rows = [];
  for (const f of failures) {
    if (f && typeof f === 'object') rows.push(certificateRow(f.name, 'failing (' + num(f.attempts, 0) + ')', '—', 'retry ' + fmtDate(f.retryAt), String(f.reason)));
  }
  for (const c of certificates) {
    if (c && typeof c === 'object') rows.push(certificateRow(c.name, 'issued', fmtDate(c.notAfter), 'renew ' + fmtDate(c.renewAt), ''));
  }
  // A CA's rate limit stops every router's orders for a while: why nothing is being ordered.
  const paused = data.ordersPaused !== null && typeof data.ordersPaused === 'object' ? data.ordersPaused : null;
  ui.certsPaused.hidden = paused === null;
  if (paused !== null) {
    setText(ui.certsPaused, 'Orders paused on every router until ' + fmtDate(paused.until) + ' UTC: the CA refused the order for ' + String(paused.name) + ' for a rate limit (' + String(paused.reason) + ')');
  }
  ui.certsBody.replaceChildren(...rows);
  ui.certsEmpty.hidden = rows.length > 0;
  // One page only: with thousands of custom domains the rest is the admin API's, page by page.
  const total = data.total !== null && typeof data.total === 'object' ? data.total : {};
  const more = typeof data.next === 'string';
  ui.certsMore.hidden = !more;
  // Failed orders are what the panel is looked at for: say how many there are beyond this page.
  if (more) {
    setText(ui.certsMore, 'The first ' + CERTIFICATES_PAGE + ' of ' + num(total.domains, 0) + ' domains (' + num(total.failures, 0) + ' failing in all); the rest: GET /api/certificates?after=' + data.next);
  }
}
async function refreshCertificates() {
  try {
    renderCertificates(await api('GET', '/api/certificates?limit=' + CERTIFICATES_PAGE));
  } catch (err) {
    if (err instanceof AuthRequired) return;
    // An older router without the endpoint: no panel. Any other failure (a restart, a blip) keeps
    // the rows last read and says they could not be read now: hidden, failing orders read as "ACME off".
    if (err instanceof ApiError && err.status === 404) return renderCertificates(null);
    ui.certsUnreadable.hidden = ui.certsPanel.hidden;
    setText(ui.certsUnreadable, 'Could not be read just now (' + describeError(err) + '): the rows are the last read.');
  }
}
setInterval(() => {
  if (state.token !== null) refreshCertificates();
}, CERTIFICATES_EVERY_MS);

/* ---------- operator actions ---------- */
function setMessage(view, text, kind) {
  clearTimeout(view.messageTimer);
  setText(view.f.message, text);
  setAttr(view.f.message, 'data-kind', kind || 'info');
  if (text !== '' && !kind) view.messageTimer = setTimeout(() => setMessage(view, ''), 6000);
}
/** fetch throws (no status) only when no answer came: the router is gone or the network down. */
function describeError(err) {
  if (err instanceof ApiError) return err.message + ' (' + err.code + (err.requestId ? ', request ' + err.requestId : '') + ')';
  return 'the router could not be reached';
}
/**
 * Why a write did not happen. Without an answer the router cannot have taken it (unless the
 * connection broke after it did, which the browser cannot tell: the stream shows what holds).
 */
function failureText(err) {
  return err instanceof ApiError ? 'Refused: ' + describeError(err) + '.' : 'Could not reach the router: the change was not confirmed.';
}
/** failed(): what else to say when it did not happen (the weight in force, say). */
async function runAction(view, button, request, done, failed) {
  if (view.busy) return;
  view.busy = true;
  // Not disabled: a disabled button drops the focus to the page's body, and a keyboard or screen
  // reader user with it. view.busy refuses a second press meanwhile.
  setAttr(button, 'aria-disabled', true);
  setMessage(view, 'Sending…');
  try {
    const result = await request();
    setMessage(view, done(result) + (result && result.pending ? '; not every worker routes by it yet' : ''));
    await refreshRegions();
  } catch (err) {
    if (!(err instanceof AuthRequired)) setMessage(view, failureText(err) + (failed ? ' ' + failed() : ''), 'error');
  } finally {
    view.busy = false;
    button.removeAttribute('aria-disabled');
    showDrain(view); // drawn as the router answered it (Undrain once drained), not at the next update
  }
}
const DRAIN_TEXT = { drain: 'Drain', undrain: 'Undrain', 'confirm-drain': 'Confirm drain' };
function showDrain(view) {
  const action = view.armed ? 'confirm-drain' : view.drained ? 'undrain' : 'drain';
  if (!view.busy) {
    setAttr(view.f.drain, 'data-action', action);
    setText(view.f.drain, DRAIN_TEXT[action]);
  }
  setAttr(view.f.drain, 'aria-label', DRAIN_TEXT[action] + (view.armed ? ' of ' : ' ') + view.name);
}
function disarm(view) {
  clearTimeout(view.armed);
  view.armed = 0;
  setMessage(view, '');
  showDrain(view);
}
/**
 * A drain takes a region out of routing: the first click asks (in place: the card stays live, the
 * focus on the button) for 10 s, the second sends. Undrain, the undo, takes one click.
 */
function onDrainClick(view, event) {
  if (view.busy) return;
  const verb = view.drained ? 'undrain' : 'drain';
  if (verb === 'drain' && !view.armed) {
    view.armed = setTimeout(() => disarm(view), 10000);
    showDrain(view);
    return setMessage(view, 'Drain ' + view.name + '? It takes no new traffic until undrained. Click again to confirm (Esc cancels).', 'confirm');
  }
  if (event.detail > 1) return; // a double click's second click confirms nothing
  disarm(view);
  runAction(view, view.f.drain, () => api('POST', '/api/regions/' + encodeURIComponent(view.id) + '/' + verb), () => view.name + ' ' + verb + 'ed');
}
/** A weight refused (or never sent) leaves the field: it shows the one routing uses, as the card does. */
function weightInForce(view) {
  view.weightDirty = false;
  view.f.weightInput.value = String(view.weight);
  return 'Weight in force: ' + view.weight + '.';
}
function onWeightSubmit(view) {
  const input = view.f.weightInput;
  const raw = input.value.trim();
  const weight = Number(raw);
  if (raw === '' || !Number.isFinite(weight) || weight < 0 || weight > 100) {
    setMessage(view, 'Weight must be a number from 0 to 100. ' + weightInForce(view), 'error');
    input.focus();
    return;
  }
  runAction(view, view.f.weightSet, () => api('PUT', '/api/regions/' + encodeURIComponent(view.id) + '/weight', { weight: weight }), (res) => {
    view.weightDirty = false;
    return 'Weight of ' + view.name + ' set to ' + (res && typeof res.weight === 'number' ? res.weight : weight);
  }, () => weightInForce(view));
}
async function refreshRegions() {
  try {
    renderRegions(await api('GET', '/api/regions'), false);
    // Drawn for the action's result; what ages (heartbeats, the registry) ages unseen without the stream.
    if (ui.connection.getAttribute('data-state') !== 'live') markOld();
  } catch {
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
  } catch {
    return;
  }
  if (event === 'regions') {
    state.attempt = 0;
    setConnection('live', '● Live');
    showNotice(null);
    renderRegions(payload, true);
  } else if (event === 'events') {
    // The router could not read the log: said, where the last rows read went on as if current.
    if (payload && payload.error && typeof payload.error === 'object') eventsUnavailable(new ApiError(503, String(payload.error.code), String(payload.error.message)));
    else renderEvents(payload && payload.events, false);
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
  if (res.status === 429) {
    const body = await res.json().catch(() => null);
    throw new StreamsFull(body && body.error && body.error.message ? String(body.error.message) : 'HTTP 429');
  }
  if (!res.ok || !res.body) throw new Error('HTTP ' + res.status);
  state.lastMessageAt = performance.now();
  if (state.streamOpenedOnce) {
    api('GET', '/api/events?limit=' + MAX_EVENTS).then(
      (r) => renderEvents(r && r.events, false),
      (err) => {
        if (!(err instanceof AuthRequired)) eventsUnavailable(err);
      },
    );
  }
  state.streamOpenedOnce = true;
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const chunk = await reader.read();
    if (chunk.done || controller !== state.stream) return;
    state.lastMessageAt = performance.now();
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
  // The silence bound covers the connect too, counted from now: counted from the last message of a
  // stream lost long ago, it cut every attempt the router did not answer within the next second.
  state.lastMessageAt = performance.now();
  if (ui.connection.getAttribute('data-state') !== 'live') setConnection('connecting', '… Connecting');
  readStream(controller).then(
    () => {
      if (controller === state.stream) scheduleReconnect('the stream ended');
    },
    (err) => {
      if (controller !== state.stream || err instanceof AuthRequired) return;
      // Not a lost connection: the router is up and turned this page away; what helps is a dashboard fewer.
      if (err instanceof StreamsFull) {
        showNotice('Too many dashboards are open on this router for live updates (' + err.message + '). Close one you no longer need: this page tries again by itself.');
        return scheduleReconnect('too many dashboards open');
      }
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
/** Without the stream what is shown ages unseen ("fresh", "heartbeat 0.3 s ago" for good): say so. */
function markOld() {
  setAttr(document.body, 'data-old', true);
  setAttr(ui.stale, 'data-state', 'unknown');
  setText(ui.stale, 'Registry: unknown');
  for (const view of state.views.values()) {
    setText(view.f.registry, 'unknown');
    setText(view.f.heartbeat, 'unknown');
  }
  if (state.lastGeneratedAt > 0) setText(ui.updated, '⚠ Not updated since ' + fmtStamp(state.lastGeneratedAt, localDay(Date.now())));
}
function scheduleReconnect(reason) {
  stopStream();
  markOld();
  const base = Math.min(RECONNECT_MAX_MS, 500 * Math.pow(2, state.attempt));
  const delay = Math.round(base * (0.8 + Math.random() * 0.4));
  state.attempt += 1;
  setConnection(state.attempt > 4 ? 'offline' : 'reconnecting', '↻ Reconnecting in ' + Math.max(1, Math.round(delay / 1000)) + ' s (' + reason + ')');
  state.reconnectTimer = setTimeout(connectStream, delay);
}
setInterval(() => {
  // The stream sends the event log only when it changes: on a quiet router, midnight comes unannounced.
  if (state.events.length > 0 && localDay(Date.now()) !== state.eventsDay) placeEventRows();
  if (state.stream !== null && state.lastMessageAt !== 0 && performance.now() - state.lastMessageAt > STREAM_SILENCE_MS) {
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
  ui.eventsEmpty.removeAttribute('data-state');
  setText(ui.eventsEmpty, NO_EVENTS_TEXT);
  state.lastGeneratedAt = 0;
  ui.certsBody.replaceChildren();
  ui.certsPanel.hidden = true;
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
  // The control that had the focus went with the dashboard; the field reads out why (aria-describedby).
  ui.tokenInput.focus();
}
async function start(token) {
  if (!TOKEN_SYNTAX.test(token)) {
    requireToken('invalid');
    return;
  }
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
  else {
    failures.push(events.reason);
    if (!(events.reason instanceof AuthRequired)) eventsUnavailable(events.reason);
  }
  if (failures.some((err) => err instanceof AuthRequired)) return;
  showNotice(failures.length === 0 ? null : 'Could not load the dashboard data: ' + describeError(failures[0]) + '. Retrying over the live stream.');
  connectStream();
  refreshCertificates();
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
// A #token= link opened in a tab that shows the page already only changes the fragment: no reload
// runs the start-up below, so the token stayed in the address bar and the tab's history, and the
// page went on with the token it had. Take it out and use it, as on a fresh load.
window.addEventListener('hashchange', () => {
  const token = takeTokenFromFragment();
  if (token === null) return;
  stopStream();
  start(token);
});
if (typeof ResizeObserver === 'function') new ResizeObserver(scheduleMapLayout).observe(ui.map);
else window.addEventListener('resize', scheduleMapLayout);

const initialToken = takeTokenFromFragment() || readStoredToken();
if (initialToken) start(initialToken);
else requireToken('required');
