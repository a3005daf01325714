/**
 * A cold-start hedge: a second copy of a replayable request, sent to a region with an idle warm
 * container while the first waits on a cold start elsewhere. The first answer wins; the loser is
 * cancelled. This is the hedge's own undici handler: it holds its own gate slot and controller and
 * tells its owner (the exchange) when it answers, so the exchange can either adopt it (then every
 * later callback is passed through) or cancel it. Allocated only for a request that is hedged.
 */
import type { Dispatcher } from 'undici';
import type { RegionId } from '../core/types.js';

/** What a hedge leg reports to (the exchange). */
export interface HedgeOwner {
  /** The hedge has response headers: true when the owner adopts it as the answer. */
  hedgeAnswered(leg: HedgeLeg, controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): boolean;
  /** The hedge failed before it was adopted (its region refused, reset or timed out). */
  hedgeFailed(leg: HedgeLeg, err: Error): void;
  /** After adoption: the rest of the response, passed through. */
  hedgeData(controller: Dispatcher.DispatchController, chunk: Buffer): void;
  hedgeEnd(controller: Dispatcher.DispatchController): void;
  hedgeError(controller: Dispatcher.DispatchController, err: Error): void;
}

/** Why a leg is cut: it lost the race, or its exchange ended. Handed back by undici in onResponseError. */
export const HEDGE_LOST = new Error('EDGE_HEDGE_LOST');

export class HedgeLeg implements Dispatcher.DispatchHandler {
  /** performance.now() when it was dispatched (the upstream time of a winning hedge runs from here). */
  readonly startedAt = performance.now();
  private controller: Dispatcher.DispatchController | undefined;
  private isAdopted = false;
  private cancelled = false;
  private holdingSlot = true;

  constructor(
    private readonly owner: HedgeOwner,
    readonly region: RegionId,
    /** Gives back the gate slot the leg was dispatched with (exactly once). */
    private readonly releaseSlot: (region: RegionId) => void,
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

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.cancelled) controller.abort(HEDGE_LOST);
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    if (statusCode < 200 || this.cancelled) return;
    if (!this.owner.hedgeAnswered(this, controller, statusCode, headers)) this.cancel();
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.isAdopted) this.owner.hedgeData(controller, chunk);
  }

  onResponseEnd(controller: Dispatcher.DispatchController): void {
    this.release();
    if (this.isAdopted) this.owner.hedgeEnd(controller);
  }

  onResponseError(controller: Dispatcher.DispatchController, err: Error): void {
    this.release();
    if (this.isAdopted) this.owner.hedgeError(controller, err);
    else if (!this.cancelled) {
      this.cancelled = true;
      this.owner.hedgeFailed(this, err);
    }
  }

  private release(): void {
    if (!this.holdingSlot) return;
    this.holdingSlot = false;
    this.releaseSlot(this.region);
  }
}
