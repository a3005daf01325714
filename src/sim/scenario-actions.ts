/**
 * A scenario's scripted actions (kill a region at second 10, restart it at 25) run beside the
 * load, never blocking it. One that fails is a failure of the run, said as such: left to reject
 * on its own until the load ended, it was an unhandled rejection that took the process down
 * (no report, the topology's children left running).
 */
export interface ScenarioActions {
  /** Starts the action of this second, if there is one (the load generator calls it each second). */
  readonly onSecond: (second: number) => void;
  /** Whether one has failed yet: the run stops waiting for what it would have caused. */
  readonly anyFailed: () => boolean;
  /** Once every action started has ended: what failed, one line each. */
  readonly settled: () => Promise<string[]>;
}

export function scheduleActions(actions: Readonly<Record<number, () => Promise<void>>>): ScenarioActions {
  const running: Promise<void>[] = [];
  const failures: string[] = [];
  return {
    onSecond: (second) => {
      const action = actions[second];
      if (action === undefined) return;
      running.push(
        action().catch((err: unknown) => {
          failures.push(`the scripted action at second ${second} failed: ${err instanceof Error ? err.message : String(err)}`);
        }),
      );
    },
    anyFailed: () => failures.length > 0,
    settled: async () => {
      await Promise.all(running);
      return failures;
    },
  };
}
