/**
 * WebSocket upgrades in progress, from admission to their access line: one waiting for a region,
 * and a tunnel for as long as it is open. A drain waits for them as it waits for requests, so a
 * WebSocket is not cut the moment the last plain request has finished: nginx, HAProxy and Envoy
 * also let upgraded connections run through their drain period. At the drain deadline each is
 * ended (an upgrade still waiting is answered 503 shutting_down, a tunnel is cut), and its access
 * line says `shutdown` rather than looking like an ordinary close or blaming the client.
 */
import { InFlight } from './in-flight.js';

export class UpgradesInProgress {
  readonly #count = new InFlight();
  readonly #cuts = new Set<() => void>();

  get count(): number {
    return this.#count.count;
  }

  /** An upgrade admitted; the function returned ends it, once, however many times it is called. */
  begin(): () => void {
    this.#count.enter();
    let over = false;
    return () => {
      if (over) return;
      over = true;
      this.#count.leave();
    };
  }

  /** An upgrade in progress, with how to end it at the drain deadline; the function returned forgets it. */
  cuttable(cut: () => void): () => void {
    this.#cuts.add(cut);
    return () => void this.#cuts.delete(cut);
  }

  /** Resolves true once none is in progress, or false when `timeoutMs` passes first. */
  idle(timeoutMs: number): Promise<boolean> {
    return this.#count.idle(timeoutMs);
  }

  /** Ends every upgrade still in progress (the drain deadline); returns how many there were. */
  cutAll(): number {
    const cuts = [...this.#cuts];
    this.#cuts.clear();
    for (const cut of cuts) cut();
    return cuts.length;
  }
}
