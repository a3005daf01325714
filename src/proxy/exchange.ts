/**
 * One client request's journey through the regions: try the first candidate, stream the
 * response back with backpressure, and on a region failure move down the candidate list.
 * Implements undici's DispatchHandler directly (no stream objects, no Web Response): the
 * cheapest path undici offers, and it gives exact control over when a retry is still safe.
 *
 * Failover rule: a region that refuses/resets before answering, or answers 502/503/504 itself,
 * is followed by the next candidate — for any method when no body byte was sent, for idempotent
 * methods otherwise (their bodies up to 64 KiB are kept for replay); at most `maxAttempts`;
 * never back to a region already tried; each retry must be granted by the retry budget.
 */
import type { Dispatcher } from 'undici';
import type { RegionId } from '../core/types.js';
import type { UpstreamHeaders } from './headers.js';
import { downstreamResponseHeaders } from './headers.js';
import type { OutlierDetector, Ejection } from './outlier-detector.js';
import type { UpstreamPools } from './pools.js';
import type { RetryBudget } from './retry-budget.js';
import { classifyUpstreamError, isRetryableStatus, type UpstreamErrorCode } from './upstream-error.js';

/** The parts of Node's IncomingMessage / Http2ServerRequest the proxy uses. */
export interface ClientRequest extends AsyncIterable<Buffer> {
  readonly method?: string | undefined;
  destroy(error?: Error): unknown;
}

/** The parts of Node's ServerResponse / Http2ServerResponse the proxy uses. */
export interface ClientResponse {
  readonly headersSent: boolean;
  readonly writableEnded: boolean;
  readonly writableFinished: boolean;
  writeHead(status: number, headers: Record<string, string | string[]>): unknown;
  write(chunk: Buffer): boolean;
  end(): unknown;
  once(event: 'drain' | 'close', listener: () => void): unknown;
  destroy(error?: Error): unknown;
}

export interface ExchangeDeps<C = unknown> {
  readonly pools: UpstreamPools;
  readonly budget: RetryBudget;
  readonly outliers: OutlierDetector;
  readonly maxAttempts: number;
  /** Cap on response-header wait per attempt (the tier deadline may cut it shorter). */
  readonly headersTimeoutMs: number;
  readonly onEjection: (ejection: Ejection) => void;
  /** Sends an error answer (before any response byte went out). */
  readonly respondError: (exchange: Exchange<C>, code: ExchangeErrorCode, message: string) => void;
  /** Called once when the exchange is over, whatever happened (access log, metrics). */
  readonly onDone: (exchange: Exchange<C>) => void;
}

export type ExchangeErrorCode = UpstreamErrorCode | 'payload_too_large' | 'bad_request';

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);
const REPLAY_LIMIT_BYTES = 64 * 1024;

class EdgeError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}
const RETRY = new EdgeError('EDGE_RETRY', 'retrying on the next region');
const CLIENT_GONE = new EdgeError('EDGE_CLIENT_GONE', 'the client went away');

export interface ExchangeRequest<C = unknown> {
  readonly req: ClientRequest;
  readonly res: ClientResponse;
  readonly method: string;
  readonly path: string;
  readonly headers: UpstreamHeaders;
  readonly candidates: readonly RegionId[];
  /** The request carries a body (Content-Length > 0, chunked, or an HTTP/2 stream still open). */
  readonly hasBody: boolean;
  readonly maxBodyBytes: number;
  /** Epoch ms by which response headers must have arrived (the function's tier). */
  readonly deadlineAt: number;
  /** Headers added to every response (x-edge-*, Server-Timing parts, HSTS). */
  readonly responseHeaders: Record<string, string>;
  readonly routeMs: number;
  readonly startedAt: number;
  /** The caller's own facts about the request (e.g. for its access log), carried along untouched. */
  readonly context: C;
}

export class Exchange<C = unknown> implements Dispatcher.DispatchHandler {
  /** Regions tried, in order. */
  readonly tried: RegionId[] = [];
  status = 0;
  bytesIn = 0;
  bytesOut = 0;
  /** Why it ended badly, when it did (error code or upstream cause). */
  outcome: string | undefined;
  upstreamMs = 0;
  /** From the request's arrival to the end of the exchange. */
  totalMs = 0;
  private attemptStartedAt = 0;
  private bodyStarted = false;
  private replay: Buffer[] | null;
  private replayComplete = false;
  private controller: Dispatcher.DispatchController | undefined;
  private finished = false;
  private readonly resume = () => this.controller?.resume();

  constructor(
    readonly request: ExchangeRequest<C>,
    private readonly deps: ExchangeDeps<C>,
  ) {
    this.replay = request.hasBody && IDEMPOTENT.has(request.method) ? [] : null;
  }

  start(): void {
    this.deps.budget.recordRequest();
    this.request.res.once('close', () => {
      if (!this.request.res.writableFinished && !this.finished) {
        this.outcome ??= 'client_closed';
        this.controller?.abort(CLIENT_GONE);
        if (this.controller === undefined) this.finish(499);
      }
    });
    if (!this.request.hasBody) {
      this.attempt();
      return;
    }
    // Wait for the first body chunk before calling a region: a body whose framing is broken
    // from the start (bad chunk size, oversized first chunk) is refused without reaching anyone.
    this.bodyIterator = this.request.req[Symbol.asyncIterator]();
    this.bodyIterator.next().then(
      (first) => {
        if (this.finished) return;
        if (!first.done) {
          this.firstChunk = first.value;
          if (first.value.length > this.request.maxBodyBytes) {
            this.fail('payload_too_large', `the request body is larger than ${this.request.maxBodyBytes} bytes`);
            this.request.req.destroy();
            return;
          }
        } else {
          this.bodyEnded = true;
        }
        this.attempt();
      },
      () => this.fail('bad_request', 'the request body is not valid HTTP framing'),
    );
  }

  /** Answers with an error without calling any region (a limit known up front). */
  refuse(code: ExchangeErrorCode, message: string): void {
    this.fail(code, message);
  }

  /** The region that answered (the last one tried), or null when none was tried. */
  get region(): RegionId | null {
    return this.tried[this.tried.length - 1] ?? null;
  }

  get error(): string | null {
    return this.outcome ?? null;
  }

  private attempt(): void {
    const region = this.request.candidates[this.tried.length]!;
    this.tried.push(region);
    const pool = this.deps.pools.get(region);
    const remainingMs = this.request.deadlineAt - Date.now();
    if (pool === undefined || remainingMs <= 0) {
      this.fail('upstream_timeout', 'the function did not answer within its time limit');
      return;
    }
    this.attemptStartedAt = performance.now();
    this.controller = undefined;
    pool.dispatch(
      {
        path: this.request.path,
        method: this.request.method as Dispatcher.HttpMethod,
        headers: this.request.headers,
        body: this.body() as unknown as Dispatcher.DispatchOptions['body'],
        headersTimeout: Math.min(this.deps.headersTimeoutMs, remainingMs),
        idempotent: false, // we decide about retries; undici must not replay on its own
      },
      this,
    );
  }

  /** The request body for this attempt: fresh from the client, or the kept copy on a replay. */
  private body(): AsyncIterable<Buffer> | Buffer | null {
    if (!this.request.hasBody) return null;
    if (this.bodyStarted) return Buffer.concat(this.replay!); // only reached when replay is complete
    return this.readBody();
  }

  private async *readBody(): AsyncGenerator<Buffer> {
    this.bodyStarted = true;
    const iterator = this.bodyIterator!;
    let next: IteratorResult<Buffer> = this.bodyEnded ? { done: true, value: undefined } : { done: false, value: this.firstChunk! };
    for (; !next.done; next = await iterator.next()) {
      const chunk = next.value;
      this.bytesIn += chunk.length;
      if (this.bytesIn > this.request.maxBodyBytes) throw new EdgeError('EDGE_PAYLOAD_TOO_LARGE', 'request body too large');
      if (this.replay !== null) {
        if (this.bytesIn <= REPLAY_LIMIT_BYTES) this.replay.push(chunk);
        else this.replay = null;
      }
      yield chunk;
    }
    if (this.replay !== null) this.replayComplete = true;
  }

  private bodyIterator: AsyncIterator<Buffer> | undefined;
  private firstChunk: Buffer | undefined;
  private bodyEnded = false;

  private canRetry(): boolean {
    if (this.tried.length >= this.deps.maxAttempts || this.tried.length >= this.request.candidates.length) return false;
    if (this.request.res.headersSent || this.finished) return false;
    // No body byte left us, or an idempotent request whose whole body we kept.
    const bodySafe = !this.bodyStarted || (this.replay !== null && this.replayComplete);
    return bodySafe && this.deps.budget.tryAcquire();
  }

  private regionFailed(cause: string): void {
    const ejection = this.deps.outliers.failure(this.region!, cause);
    if (ejection !== undefined) this.deps.onEjection(ejection);
  }

  // --- undici DispatchHandler ------------------------------------------------------------------

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.finished) controller.abort(CLIENT_GONE);
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    if (statusCode < 200) return; // 1xx: informational, not forwarded
    if (isRetryableStatus(statusCode)) {
      this.regionFailed(`status ${statusCode}`);
      if (this.canRetry()) {
        controller.abort(RETRY);
        return;
      }
    } else {
      this.deps.outliers.success(this.region!);
    }
    this.upstreamMs = performance.now() - this.attemptStartedAt;
    this.status = statusCode;
    const out = downstreamResponseHeaders(headers);
    const extra = this.request.responseHeaders;
    for (const name in extra) out[name] = extra[name]!;
    out['x-edge-region'] = this.region!;
    out['server-timing'] = `route;dur=${this.request.routeMs.toFixed(2)}, upstream;dur=${this.upstreamMs.toFixed(2)}`;
    this.request.res.writeHead(statusCode, out);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.bytesOut += chunk.length;
    if (!this.request.res.write(chunk)) {
      controller.pause();
      this.request.res.once('drain', this.resume);
    }
  }

  onResponseEnd(): void {
    this.request.res.end();
    this.finish(this.status);
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    if (err === RETRY) {
      this.attempt();
      return;
    }
    if (err === CLIENT_GONE) {
      this.finish(499);
      return;
    }
    if ((err as EdgeError).code === 'EDGE_PAYLOAD_TOO_LARGE') {
      this.fail('payload_too_large', `the request body is larger than ${this.request.maxBodyBytes} bytes`);
      this.request.req.destroy();
      return;
    }
    if (this.request.res.headersSent) {
      // Mid-response: nothing to retry and nothing to say; cut the client off so it knows.
      this.outcome = classifyUpstreamError(err).cause;
      this.request.res.destroy(err);
      this.finish(this.status);
      return;
    }
    const failure = classifyUpstreamError(err);
    this.outcome = failure.cause;
    if (failure.retryable) {
      this.regionFailed(failure.cause);
      if (this.canRetry()) {
        this.attempt();
        return;
      }
    }
    this.fail(
      failure.code,
      failure.code === 'upstream_timeout' ? 'the function did not answer within its time limit' : 'no region could serve the request',
    );
  }

  private fail(code: ExchangeErrorCode, message: string): void {
    if (this.finished) return;
    this.outcome ??= code;
    if (!this.request.res.headersSent && !this.request.res.writableEnded) this.deps.respondError(this, code, message);
    this.finish(code === 'payload_too_large' ? 413 : code === 'bad_request' ? 400 : code === 'upstream_timeout' ? 504 : 502);
  }

  private finish(status: number): void {
    if (this.finished) return;
    this.finished = true;
    this.status = status;
    this.totalMs = performance.now() - this.request.startedAt;
    this.deps.onDone(this);
  }
}
