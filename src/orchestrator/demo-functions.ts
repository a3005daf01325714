/**
 * The functions every simulated region runs: echo, slow, stream, fail, cpu — plus a generic
 * handler for functions deployed through the registry. They stand in for customers' code; each
 * gets the request after the container pool has given it a container.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Worker } from 'node:worker_threads';

export interface FunctionContext {
  readonly fn: string;
  readonly org: string;
  readonly region: string;
  readonly container: string;
  readonly url: URL;
  /** Aborted when the client goes away or the tier deadline passes. */
  readonly signal: AbortSignal;
}

export type FunctionHandler = (req: IncomingMessage, res: ServerResponse, ctx: FunctionContext) => Promise<void>;

const MAX_ECHO_BODY = 64 * 1024;

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  if (!res.headersSent) res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function boundedNumber(url: URL, name: string, fallback: number, max: number): number {
  const value = Number(url.searchParams.get(name) ?? fallback);
  return Number.isFinite(value) ? Math.min(Math.max(0, value), max) : fallback;
}

function wait(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason as Error);
    // The listener goes when the timer fires: a stream waits once per chunk on one signal, and
    // listeners left behind piled up (10,000 per request, and a warning line from the 11th).
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason as Error);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Reads a request body to its end, keeping at most its first `keep` bytes; the rest is counted as
 * it streams by. Nothing bounds a body's size, and holding it whole (then concatenating it) took
 * twice its size in memory: a 256 MiB POST grew the process by 512 MiB.
 */
async function readBody(req: IncomingMessage, keep: number): Promise<{ head: Buffer; bytes: number }> {
  const kept: Buffer[] = [];
  let keptBytes = 0;
  let bytes = 0;
  for await (const chunk of req) {
    const piece = chunk as Buffer;
    bytes += piece.length;
    if (keptBytes < keep) {
      const part = piece.subarray(0, keep - keptBytes);
      // A copy: a slice would keep the whole chunk it came from alive.
      kept.push(Buffer.from(part));
      keptBytes += part.length;
    }
  }
  return { head: Buffer.concat(kept), bytes };
}

const echo: FunctionHandler = async (req, res, ctx) => {
  const body = await readBody(req, MAX_ECHO_BODY);
  json(res, 200, {
    method: req.method,
    path: ctx.url.pathname,
    query: Object.fromEntries(ctx.url.searchParams),
    headers: req.headers,
    body: body.bytes <= MAX_ECHO_BODY ? body.head.toString('utf8') : undefined,
    bodyBytes: body.bytes,
    region: ctx.region,
    container: ctx.container,
  });
};

const slow: FunctionHandler = async (req, res, ctx) => {
  req.resume();
  const ms = boundedNumber(ctx.url, 'ms', 1_000, 120_000);
  await wait(ms, ctx.signal);
  json(res, 200, { slept: ms, region: ctx.region });
};

const stream: FunctionHandler = async (req, res, ctx) => {
  req.resume();
  const count = boundedNumber(ctx.url, 'n', 10, 10_000);
  const intervalMs = boundedNumber(ctx.url, 'interval', 100, 10_000);
  const sse = ctx.url.searchParams.has('sse') || (req.headers.accept ?? '').includes('text/event-stream');
  res.writeHead(200, sse ? { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' } : { 'content-type': 'text/plain; charset=utf-8' });
  for (let i = 0; i < count; i++) {
    if (i > 0) await wait(intervalMs, ctx.signal);
    res.write(sse ? `id: ${i}\nevent: tick\ndata: {"n":${i},"region":"${ctx.region}"}\n\n` : `chunk ${i} from ${ctx.region}\n`);
  }
  res.end();
};

const fail: FunctionHandler = async (req, res, ctx) => {
  req.resume();
  const status = boundedNumber(ctx.url, 'status', 500, 599);
  json(res, status >= 400 ? status : 500, { error: { code: 'function_failed', message: `fail was asked for ${status}` }, region: ctx.region });
};

/** Burns CPU in a worker thread, so the orchestrator's event loop (and, in `npm start`, the router's) stays free. */
const cpu: FunctionHandler = async (req, res, ctx) => {
  req.resume();
  const ms = boundedNumber(ctx.url, 'ms', 100, 10_000);
  await new Promise<void>((resolve, reject) => {
    const worker = new Worker('const end = Date.now() + require("worker_threads").workerData; while (Date.now() < end) {}', { eval: true, workerData: ms });
    // A worker terminated by the abort below also exits: that is the deadline, not a finished burn.
    worker.once('exit', () => (ctx.signal.aborted ? reject(ctx.signal.reason as Error) : resolve()));
    worker.once('error', reject);
    ctx.signal.addEventListener('abort', () => void worker.terminate(), { once: true });
  });
  json(res, 200, { burnedMs: ms, region: ctx.region });
};

/** Any function deployed through the registry: it says who it is and where it ran. */
export const genericFunction: FunctionHandler = async (req, res, ctx) => {
  const body = await readBody(req, 0);
  json(res, 200, { function: ctx.fn, org: ctx.org, region: ctx.region, container: ctx.container, method: req.method, path: ctx.url.pathname, bodyBytes: body.bytes });
};

export const DEMO_ORG = 'demo';
export const DEMO_FUNCTIONS: Readonly<Record<string, FunctionHandler>> = { echo, slow, stream, fail, cpu };
