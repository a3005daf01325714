/**
 * Which workers hold each slot of the cluster, and when a slot is to be refilled. Pure.
 *
 * A worker that stops accepting (it faulted and drains, or was sent a signal of its own) used to be
 * replaced only at its exit: with WebSockets open, up to the drain timeout (65 s) with one worker
 * fewer, and a request that crashed every worker it reached left all N draining with none
 * accepting. Its slot is now refilled as soon as it says it drains, and it finishes its drain
 * alongside its successor. Bounded: a slot has at most one draining predecessor besides its
 * current worker (so at most 2N workers); a successor that stops accepting while its predecessor
 * still drains is refilled only once one of the two has exited. Every refill still waits out the
 * restart backoff (restart-backoff.ts), so a crash loop forks no faster than before.
 */
interface Slot<W> {
  /** The worker that accepts for the slot (undefined: its successor is yet to be forked). */
  current: W | undefined;
  /** Whether `current` has stopped accepting, its refill waiting for `draining` to exit. */
  currentDraining: boolean;
  /** The one predecessor still finishing its drain. */
  draining: W | undefined;
}

export class SlotSuccession<W> {
  private readonly slots = new Map<number, Slot<W>>();

  /** `worker` was forked for `slot`: the slot's accepting worker. */
  forked(slot: number, worker: W): void {
    const s = this.slotOf(slot);
    s.current = worker;
    s.currentDraining = false;
  }

  /** `worker` stopped accepting and drains: true when its slot is to be refilled now. */
  drainBegan(slot: number, worker: W): boolean {
    const s = this.slotOf(slot);
    if (s.current !== worker || s.currentDraining) return false;
    if (s.draining !== undefined) {
      s.currentDraining = true;
      return false;
    }
    s.draining = worker;
    s.current = undefined;
    return true;
  }

  /**
   * `worker` exited. When its slot is to be refilled now, the worker whose place the refill takes:
   * `worker` itself (it died accepting), or its successor, which stopped accepting while `worker`
   * drained (its backoff is counted by its own life, and `worker`'s exit is no death). Else undefined.
   */
  exited(slot: number, worker: W): W | undefined {
    const s = this.slotOf(slot);
    if (s.draining === worker) {
      s.draining = undefined;
      if (!s.currentDraining) return undefined;
      // The successor stopped accepting while this one drained: it takes the draining place, and the slot is refilled.
      const successor = s.current;
      s.draining = successor;
      s.current = undefined;
      s.currentDraining = false;
      return successor;
    }
    if (s.current !== worker) return undefined;
    s.current = undefined;
    s.currentDraining = false;
    return worker;
  }

  private slotOf(slot: number): Slot<W> {
    let s = this.slots.get(slot);
    if (s === undefined) this.slots.set(slot, (s = { current: undefined, currentDraining: false, draining: undefined }));
    return s;
  }
}
