/**
 * The request path's clock: milliseconds on the epoch's scale (the wall clock when the process
 * began, plus the monotonic time since), which a step of the system clock does not move. Request
 * deadlines, body and send timeouts and the region queue's deadline are kept on it: on Date.now(),
 * an NTP step forward of a tier's length answered every request in flight 504 and counted each
 * deadline against its region, ejecting regions for every router; a step back held them as long
 * (found by review). Times compared with another machine's (a shared ejection's end, a
 * heartbeat's) stay on Date.now(): this clock drifts from the wall clock by every step since start.
 */
const origin = performance.timeOrigin;

export function monotonicNow(): number {
  return origin + performance.now();
}
