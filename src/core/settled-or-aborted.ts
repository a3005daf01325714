/**
 * `work`, or `signal`'s reason as a rejection as soon as it aborts, whichever comes first. The
 * abort listener goes when `work` settles; `work` left behind may still fail, and nobody is
 * waiting for it then. Used where a wait must end with its request (a function past its tier
 * limit, a container still starting when its request is over).
 */
export function settledOrAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  work.catch(() => undefined);
  return new Promise((resolve, reject) => {
    const stop = () => reject(signal.reason as Error);
    if (signal.aborted) return stop();
    signal.addEventListener('abort', stop, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', stop));
  });
}
