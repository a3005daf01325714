/**
 * Reading callgrind's output for `npm run bench:instructions`. Pure: text in, numbers out.
 *
 * Why per thread: a Node process runs V8's optimising compiler and parts of its garbage collector on
 * helper threads. Counted over the whole process, a run in which TurboFan was still recompiling
 * something (after a deoptimisation, or a function that only got hot late) read 30–40 % higher
 * than the next run of the same build: 239,019 against 314,563 instructions per request, the
 * compiler's own passes (`GraphReducer::Reduce`…) at the top of the dearer one. The main thread,
 * where every request is handled, moved ±3.5 % over the same runs. So the main thread is the
 * measure, and the helper threads are reported beside it.
 */

/** Total instructions in one callgrind output file (its `totals:` or `summary:` line), or undefined. */
export function callgrindTotal(text: string): number | undefined {
  const match = /^(?:totals|summary):\s+(\d+)/m.exec(text);
  return match === null ? undefined : Number(match[1]);
}

/**
 * The thread a dump file belongs to. With `--separate-threads=yes` callgrind names each thread's
 * file `<out-file>.<dump>-<thread>` (thread 1 is the main thread); undefined for anything else.
 */
export function dumpThread(outFile: string, fileName: string): { dump: number; thread: number } | undefined {
  if (!fileName.startsWith(`${outFile}.`)) return undefined;
  const match = /^(\d+)-(\d+)$/.exec(fileName.slice(outFile.length + 1));
  return match === null ? undefined : { dump: Number(match[1]), thread: Number(match[2]) };
}

export interface ThreadSplit {
  /** Instructions of the main thread (JavaScript, the event loop, the main thread's share of GC). */
  readonly main: number;
  /** Instructions of every other thread (JIT compiler, GC helpers, libuv's pool). */
  readonly others: number;
  /** The main thread's dump file. */
  readonly mainFile: string;
}

/**
 * Splits one dump's per-thread totals into the main thread's and the rest: dump number `dump`, or
 * counted back from the last (0 the last, -1 the one before it).
 */
export function splitThreads(outFile: string, files: readonly { readonly name: string; readonly text: string }[], dump = 0): ThreadSplit | undefined {
  const parsed = files.map((f) => ({ ...f, at: dumpThread(outFile, f.name) })).filter((f) => f.at !== undefined);
  if (parsed.length === 0) return undefined;
  const wanted = dump > 0 ? dump : Math.max(...parsed.map((f) => f.at!.dump)) + dump;
  let main: { total: number; file: string } | undefined;
  let others = 0;
  for (const f of parsed) {
    if (f.at!.dump !== wanted) continue;
    const total = callgrindTotal(f.text) ?? 0;
    if (f.at!.thread === 1) main = { total, file: f.name };
    else others += total;
  }
  return main === undefined ? undefined : { main: main.total, others, mainFile: main.file };
}

/** One entry of a V8 perf map (`--perf-basic-prof`: `/tmp/perf-<pid>.map`, lines `start size name`, hex). */
interface MapEntry {
  readonly start: number;
  readonly end: number;
  readonly name: string;
}

/** Code addresses → the JavaScript function (or V8 builtin) compiled there. */
export class PerfMap {
  private readonly entries: MapEntry[];

  constructor(text: string) {
    const entries: MapEntry[] = [];
    for (const line of text.split('\n')) {
      const match = /^([0-9a-f]+) ([0-9a-f]+) (.+)$/i.exec(line);
      if (match === null) continue;
      const start = parseInt(match[1]!, 16);
      entries.push({ start, end: start + parseInt(match[2]!, 16), name: match[3]! });
    }
    // Code moves and is recompiled: a later line for the same address is the newer code, and wins.
    this.entries = entries.map((e, i) => ({ e, i })).sort((a, b) => a.e.start - b.e.start || a.i - b.i).map(({ e }) => e);
  }

  nameAt(address: number): string | undefined {
    let lo = 0;
    let hi = this.entries.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.entries[mid]!.start <= address) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    // Several entries may start at or before the address; the newest one covering it is the last of them.
    for (let i = found; i >= 0 && i > found - 8; i--) {
      const e = this.entries[i]!;
      if (e.start <= address && address < e.end) return e.name;
    }
    return undefined;
  }
}

export interface FunctionCost {
  readonly name: string;
  readonly instructions: number;
}

/**
 * The functions of a `callgrind_annotate --inclusive=no` listing, largest first, with JIT code
 * (which callgrind can only show as a bare address) named from V8's perf map; entries naming the
 * same function (code recompiled at another address) are added together.
 */
export function selfCosts(annotateOutput: string, map: PerfMap | undefined): FunctionCost[] {
  const byName = new Map<string, number>();
  for (const line of annotateOutput.split('\n')) {
    const match = /^\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(.+)$/.exec(line);
    if (match === null || match[2]!.includes('PROGRAM TOTALS')) continue;
    let name = match[2]!.replace(/^\?\?\?:/, '').replace(/ \[[^\]]*\]$/, '');
    const address = /^0x([0-9a-f]+)$/i.exec(name);
    if (address !== null) name = map?.nameAt(parseInt(address[1]!, 16)) ?? `JIT code ${name}`;
    byName.set(name, (byName.get(name) ?? 0) + Number(match[1]!.replaceAll(',', '')));
  }
  return [...byName].map(([name, instructions]) => ({ name, instructions })).sort((a, b) => b.instructions - a.instructions);
}

/**
 * Per-function costs of a count minus those of an idle count of the same length (what the clock
 * did: probes, timed flushes), by name; dearest first. A function the idle count names and the
 * load count does not is left out.
 */
export function netCosts(load: readonly FunctionCost[], idle: readonly FunctionCost[]): FunctionCost[] {
  const idleByName = new Map(idle.map((f) => [f.name, f.instructions]));
  return load.map((f) => ({ name: f.name, instructions: f.instructions - (idleByName.get(f.name) ?? 0) })).sort((a, b) => b.instructions - a.instructions);
}
