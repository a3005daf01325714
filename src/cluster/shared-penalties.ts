/**
 * One penalty box for the whole cluster. A worker that catches an address flooding (a rapid reset,
 * a frame flood) refuses that address at connect; but node:cluster deals the attacker's next
 * connections round robin to every worker, and the others would take them. So the worker tells
 * the primary, the primary tells every other worker, and each puts the address in its own box and
 * closes that address's HTTP/2 connections. A worker started later (a replacement) begins with an
 * empty box: the penalty is short, and a flood it sees itself puts the address back.
 */
import type { MessageLink } from './message-link.js';

const PENALIZED = 'router.penalized';

/**
 * A worker's side. `penalize` is called for each address another worker penalized; the function
 * returned is to be called when this worker penalizes one.
 */
export function sharePenalties(link: MessageLink, penalize: (address: string) => void): (address: string) => void {
  link.onPush(PENALIZED, (address) => {
    if (typeof address === 'string') penalize(address);
  });
  return (address) => link.push(PENALIZED, address);
}

/** The primary's side: relays each worker's penalties to every other worker. */
export class PenaltyRelay {
  private readonly links = new Set<MessageLink>();

  /** Relays for `link`'s worker; returns a function to call when that worker has gone. */
  attach(link: MessageLink): () => void {
    this.links.add(link);
    const stopListening = link.onPush(PENALIZED, (address) => {
      if (typeof address !== 'string') return;
      for (const other of this.links) if (other !== link) other.push(PENALIZED, address);
    });
    return () => {
      stopListening();
      this.links.delete(link);
    };
  }
}
