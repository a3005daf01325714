/**
 * What an exchange (or its hedge) does to its upstream request while undici runs it: pause the
 * response while the client cannot take more, resume it, or abort it.
 *
 * The exchange speaks undici's core handler interface (onConnect / onHeaders / onData / onComplete
 * / onError), the one undici's HTTP/1 client itself calls. undici's newer controller interface
 * (onRequestStart / onResponseStart / …) is an adapter over that one: per attempt it allocates a
 * controller and parses the whole response head into an object, which the proxy then had to walk
 * again to build its own head. In the core interface, pausing is a `false` returned from onHeaders
 * or onData and resuming is a function handed over with the head; this class turns them back into
 * pause() and resume() calls that can come from anywhere (a client's 'drain', a yielded turn).
 *
 * undici 7 marks the core interface deprecated but calls it on every request (package.json keeps
 * undici at 7.x); test/proxy/upstream-control.test.ts runs it against a real undici Pool, so a
 * release that stopped calling it would fail there first.
 */
export class UpstreamControl {
  /** Set by pause(); the exchange's onData returns its negation to undici. */
  paused = false;
  private aborted = false;
  /** undici's resume for this response, handed over with its head. */
  private resumeResponse: (() => void) | undefined;

  constructor(private readonly abortRequest: (reason: Error) => void) {}

  /** The response head arrived: how to resume its body later. */
  headArrived(resume: () => void): void {
    this.resumeResponse = resume;
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.resumeResponse?.();
  }

  /** Aborts the request once; undici answers with onError(reason). */
  abort(reason: Error): void {
    if (this.aborted) return;
    this.aborted = true;
    this.abortRequest(reason);
  }
}
