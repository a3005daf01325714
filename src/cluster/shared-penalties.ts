/**
 * One penalty box for the whole cluster. A worker that catches an address flooding (a rapid reset,
 * a frame flood) refuses that address at connect; but node:cluster deals the attacker's next
 * connections round robin to every worker, and the others would take them. So the worker tells
 * the primary, the primary tells every other worker, and each puts the address in its own box
 * (until the same end time) and closes that address's HTTP/2 connections. Each penalty travels with
 * its length, so every worker judges the address's next offence as a repeat alike (penalty-box.ts:
 * a repeat offender's penalty doubles). The primary keeps the penalties running or remembered, and
 * a worker that starts later (a replacement) asks for them as it starts, before it listens.
 */
import { PenaltyBox } from '../core/penalty-box.js';
import type { MessageLink } from './message-link.js';

const PENALIZED = 'router.penalized';
const PENALTIES_NOW = 'router.penalties';

/** An address (its limit key) refused until `untilMs` (epoch ms: the processes share one clock), for a penalty `lengthMs` long. */
type Penalty = readonly [address: string, untilMs: number, lengthMs: number];

const isPenalty = (value: unknown): value is Penalty =>
  Array.isArray(value) && value.length === 3 && typeof value[0] === 'string' && typeof value[1] === 'number' && typeof value[2] === 'number';

type Penalize = (address: string, untilMs: number, lengthMs: number) => void;

/**
 * A worker's side. `penalize` is called for each penalty another worker gave, and for those running
 * or remembered when this worker started; the function returned is to be called when this worker gives one.
 */
export function sharePenalties(link: MessageLink, penalize: Penalize): Penalize {
  // Listening first, then asking: nothing relayed in between is missed.
  link.onPush(PENALIZED, (penalty) => {
    if (isPenalty(penalty)) penalize(...penalty);
  });
  link
    .call<unknown>(PENALTIES_NOW)
    .then((running) => {
      if (Array.isArray(running)) for (const penalty of running) if (isPenalty(penalty)) penalize(...penalty);
    })
    // A primary that cannot answer (it is stopping): this worker starts with an empty box, as before.
    .catch(() => undefined);
  return (address, untilMs, lengthMs) => link.push(PENALIZED, [address, untilMs, lengthMs] satisfies Penalty);
}

/** The primary's side: relays each worker's penalties to every other worker, and keeps those running or remembered for workers to come. */
export class PenaltyRelay {
  private readonly links = new Set<MessageLink>();
  /** Bounded like a worker's box; the penalty time comes with each penalty. */
  private readonly running = new PenaltyBox(0);

  /** Relays for `link`'s worker; returns a function to call when that worker has gone. */
  attach(link: MessageLink): () => void {
    this.links.add(link);
    link.handle(PENALTIES_NOW, () => [...this.running.records(Date.now())]);
    const stopListening = link.onPush(PENALIZED, (penalty) => {
      if (!isPenalty(penalty)) return;
      this.running.addUntil(...penalty, Date.now());
      for (const other of this.links) if (other !== link) other.push(PENALIZED, penalty);
    });
    return () => {
      stopListening();
      this.links.delete(link);
    };
  }
}
