/**
 * One penalty box for the whole cluster. A worker that catches an address flooding (a rapid reset,
 * a frame flood) refuses that address at connect; but node:cluster deals the attacker's next
 * connections round robin to every worker, and the others would take them. So the worker tells
 * the primary, the primary tells every other worker, and each puts the address in its own box
 * (until the same end time) and closes that address's HTTP/2 connections. The primary keeps the
 * penalties still running, and a worker that starts later (a replacement) asks for them once it
 * listens.
 */
import { PenaltyBox } from '../core/penalty-box.js';
import type { MessageLink } from './message-link.js';

const PENALIZED = 'router.penalized';
const PENALTIES_NOW = 'router.penalties';

/** An address (its limit key) refused until `untilMs` (epoch ms: the processes share one clock). */
type Penalty = readonly [address: string, untilMs: number];

const isPenalty = (value: unknown): value is Penalty =>
  Array.isArray(value) && value.length === 2 && typeof value[0] === 'string' && typeof value[1] === 'number';

/**
 * A worker's side. `penalize` is called for each penalty another worker gave, and for those still
 * running when this worker started; the function returned is to be called when this worker gives one.
 */
export function sharePenalties(link: MessageLink, penalize: (address: string, untilMs: number) => void): (address: string, untilMs: number) => void {
  // Listening first, then asking: nothing relayed in between is missed.
  link.onPush(PENALIZED, (penalty) => {
    if (isPenalty(penalty)) penalize(penalty[0], penalty[1]);
  });
  link
    .call<unknown>(PENALTIES_NOW)
    .then((running) => {
      if (Array.isArray(running)) for (const penalty of running) if (isPenalty(penalty)) penalize(penalty[0], penalty[1]);
    })
    // A primary that cannot answer (it is stopping): this worker starts with an empty box, as before.
    .catch(() => undefined);
  return (address, untilMs) => link.push(PENALIZED, [address, untilMs] satisfies Penalty);
}

/** The primary's side: relays each worker's penalties to every other worker, and keeps the running ones for workers to come. */
export class PenaltyRelay {
  private readonly links = new Set<MessageLink>();
  /** Bounded like a worker's box; the penalty time comes with each penalty. */
  private readonly running = new PenaltyBox(0);

  /** Relays for `link`'s worker; returns a function to call when that worker has gone. */
  attach(link: MessageLink): () => void {
    this.links.add(link);
    link.handle(PENALTIES_NOW, () => [...this.running.live(Date.now())]);
    const stopListening = link.onPush(PENALIZED, (penalty) => {
      if (!isPenalty(penalty)) return;
      this.running.addUntil(penalty[0], penalty[1], Date.now());
      for (const other of this.links) if (other !== link) other.push(PENALIZED, penalty);
    });
    return () => {
      stopListening();
      this.links.delete(link);
    };
  }
}
