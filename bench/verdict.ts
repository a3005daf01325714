/**
 * What the proxy benchmarks (bench/proxy.ts, bench/workers.ts) share in judging a run: the median
 * of per-round values, the failed answers they collect, and whether the machine moved under them.
 */
import type { WrkResult } from './wrk-output.js';

/** The origin-alone calibration may move this much between start and end before the run is void. */
export const CALIBRATION_DRIFT = 0.15;

/** NaN when any value is (a round that could not be measured): not one of the others chosen by a sort that NaN breaks. */
export function median(values: readonly number[]): number {
  if (values.some(Number.isNaN)) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Every answer should be 2xx and no socket should fail: what did not, by run. */
export class RunFailures {
  private readonly seen: string[] = [];

  add(failure: string): void {
    this.seen.push(failure);
  }

  /** A load run's non-2xx answers and socket errors, if any. */
  check(label: string, result: Pick<WrkResult, 'non2xx' | 'requests' | 'socketErrors' | 'socketDetail'>): void {
    if (result.non2xx > 0) this.add(`${label}: ${result.non2xx} non-2xx responses of ${result.requests}`);
    if (result.socketErrors > 0) this.add(`${label}: ${result.socketDetail}`);
  }

  /**
   * Prints them and fails the process (exit code 1) when there are any: true then, and the caller
   * reports no ratios (wrk counts fast error answers as requests: a proxy answering 502s would
   * look fast).
   */
  report(): boolean {
    if (this.seen.length === 0) return false;
    console.log(`\nFAILURES (${this.seen.length}): every response should be 2xx and no socket should fail; no ratios are reported`);
    for (const failure of this.seen) console.log(`  ${failure}`);
    process.exitCode = 1;
    return true;
  }
}

/**
 * Whether the origin alone moved by more than CALIBRATION_DRIFT between the run's two calibrations
 * (`drift` = after ÷ before − 1, either way): then the machine's other load changed during the run,
 * this says so and fails the process, and the caller reports no ratios.
 */
export function voidedByDrift(drift: number): boolean {
  if (Math.abs(drift) <= CALIBRATION_DRIFT) return false;
  console.log(`\nNOT REPORTED: the origin alone moved by ${(drift * 100).toFixed(0)} % between the calibrations (more than ±${CALIBRATION_DRIFT * 100} %): the machine's other load changed during the run, so the ratios would measure that. Run again on a quiet machine.`);
  process.exitCode = 1;
  return true;
}
