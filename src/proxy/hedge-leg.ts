/**
 * A cold-start hedge: a second copy of a replayable request, sent to a region with an idle warm
 * container while the first waits on a cold start elsewhere. The first answer wins; the loser is
 * cancelled. This is the hedge's own undici handler: it holds its own gate slot and controller and
 * tells its owner (the exchange) when it answers, so the exchange can either adopt it (then every
 * later callback is passed through) or cancel it. Allocated only for a request that is hedged.
 */
import type { Dispatcher } from 'undici';
import type { RegionId } from '../core/types.js';
import { UpstreamControl } from './upstream-control.js';

/** What a hedge leg reports to (the exchange). */
export interface HedgeOwner {
  /** The hedge has response headers: true when the owner adopts it as the answer. */
  hedgeAnswered(leg: HedgeLeg, controller: UpstreamControl, statusCode: number, rawHeaders: readonly Buffer[]): boolean;
  /** The hedge failed before it was adopted (its region refused, reset or timed out). */
  hedgeFailed(leg: HedgeLeg, err: Error): void;
  /** After adoption: the rest of the response, passed through. */
  hedgeData(controller: UpstreamControl, chunk: Buffer): void;
  hedgeEnd(trailers: readonly (Buffer | string)[] | null): void;
  hedgeError(err: Error): void;
}

/** Why a leg is cut: it lost the race, or its exchange ended. Handed back by undici in onError. */
export const HEDGE_LOST = new Error('EDGE_HEDGE_LOST');

export class HedgeLeg implements Dispatcher.DispatchHandler {
  /** performance.now() when it was dispatched (the upstream time of a winning hedge runs from here). */
  readonly startedAt = performance.now();
  private controller: UpstreamControl | undefined;
  private isAdopted = false;
  private cancelled = false;
  private holdingSlot = true;
  /** undici read the first bytes of the hedge's answer (classifyAttemptError). */
  answerBegun = false;

  constructor(
    private readonly owner: HedgeOwner,
    readonly region: RegionId,
    /** Gives back the gate slot the leg was dispatched with (exactly once): undici is done with the leg, adopted or not. */
    private readonly releaseSlot: (region: RegionId, adopted: boolean) => void,
  ) {}

  /**
   * The owner takes this hedge's answer: called by the owner before it writes anything, so an
   * error while writing still reaches it as the adopted response's error.
   */
  adopted(): void {
    this.isAdopted = true;
  }

  /** Still racing: neither adopted nor finished. */
  get pending(): boolean {
    return !this.isAdopted && !this.cancelled && this.holdingSlot;
  }

  /** Stops the hedge (it lost, or its exchange is over). Safe to call at any time, more than once. */
  cancel(): void {
    if (this.cancelled || this.isAdopted) return;
    this.cancelled = true;
    this.controller?.abort(HEDGE_LOST);
  }

  // undici's core handler interface, as the exchange's own (upstream-control.ts).

  onConnect(abort: (reason?: Error) => void): void {
    const controller = new UpstreamControl(abort);
    this.controller = controller;
    if (this.cancelled) controller.abort(HEDGE_LOST);
  }

  onResponseStarted(): void {
    this.answerBegun = true;
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    const controller = this.controller;
    if (controller === undefined) return true;
    controller.headArrived(resume);
    if (statusCode < 200 || this.cancelled) return true;
    if (!this.owner.hedgeAnswered(this, controller, statusCode, rawHeaders)) this.cancel();
    return !controller.paused;
  }

  onData(chunk: Buffer): boolean {
    const controller = this.controller;
    if (controller === undefined) return true;
    if (this.isAdopted) this.owner.hedgeData(controller, chunk);
    return !controller.paused;
  }

  onComplete(trailers: readonly (Buffer | string)[] | null): void {
    this.release();
    if (this.isAdopted) this.owner.hedgeEnd(trailers);
  }

  onError(err: Error): void {
    this.release();
    if (this.isAdopted) this.owner.hedgeError(err);
    else if (!this.cancelled) {
      this.cancelled = true;
      this.owner.hedgeFailed(this, err);
    }
  }

  private release(): void {
    if (!this.holdingSlot) return;
    this.holdingSlot = false;
    this.releaseSlot(this.region, this.isAdopted);
  }
}
