/**
 * What a `--workers N` router did, read back from its log, for the message of a cluster test whose
 * wait ran out: each line with an `event` (the primary's worker_forked, worker_hung, worker_died, a
 * worker's "edge router ready"), and the test's own marks, in time order, with the time since the
 * first and since the one before. "Not within 66000 ms" alone said that the whole took too long;
 * this says which step did (a late hang judgement, a slow exit, a slow start, a kill of the
 * replacement itself). Pure: the output and the marks in, the text out.
 */

/** Something the test did or saw, at a time read from the same clock the router's lines carry (Date.now()). */
export interface TimelineMark {
  readonly at: number;
  readonly what: string;
}

/** Fields every line has, left out of its description. */
const COMMON = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'event']);

/** A failing test's message stays readable: the last lines are the ones near the timeout. */
const MOST_ENTRIES = 200;

interface Entry {
  readonly at: number;
  readonly text: string;
}

/** The timeline of `output` (JSON log lines; others are listed after it) with `marks` among its lines. */
export function clusterTimeline(output: string, marks: readonly TimelineMark[] = []): string {
  const entries: Entry[] = marks.map((m) => ({ at: m.at, text: `test: ${m.what}` }));
  const untimed: string[] = [];
  for (const line of output.split('\n')) {
    if (line.trim() === '') continue;
    const entry = entryOf(line);
    if (entry === null) untimed.push(line);
    else if (entry !== undefined) entries.push(entry);
  }
  // Stable: a mark taken at the same millisecond as a line stays before it.
  entries.sort((a, b) => a.at - b.at);
  const shown = entries.slice(-MOST_ENTRIES);
  const origin = entries[0]?.at ?? 0;
  let previous = origin;
  const lines = shown.map((e) => {
    const line = `${seconds(e.at - origin).padStart(8)} (${`+${seconds(e.at - previous)}`.padStart(8)})  ${e.text}`;
    previous = e.at;
    return line;
  });
  if (entries.length > shown.length) lines.unshift(`(${entries.length - shown.length} earlier entries left out)`);
  if (untimed.length > 0) lines.push('lines without a time:', ...untimed.slice(-20).map((l) => `  ${l.slice(0, 300)}`));
  return lines.join('\n');
}

/** One timed line's entry; undefined for a timed line without an event (an access line); null for a line that is not a log line. */
function entryOf(line: string): Entry | undefined | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return null;
  }
  if (typeof parsed !== 'object' || parsed === null) return null;
  const fields = parsed as Record<string, unknown>;
  if (typeof fields.time !== 'number') return null;
  if (typeof fields.event !== 'string') return undefined;
  const rest = Object.entries(fields)
    .filter(([key]) => !COMMON.has(key))
    .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`);
  const what = fields.event === 'listening' ? 'ready' : fields.event;
  return { at: fields.time, text: [`pid ${String(fields.pid)}`, what, ...rest].join(' ') };
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(3)} s`;
}

/** `wait`, whose failure names what the cluster did meanwhile: its message gains the timeline of `output()` and `marks`. */
export async function explainedBy<T>(wait: Promise<T>, output: () => string, marks: readonly TimelineMark[]): Promise<T> {
  try {
    return await wait;
  } catch (err) {
    throw new Error(`${err instanceof Error ? err.message : String(err)}\nwhat the cluster did (seconds since the first entry, and since the one before):\n${clusterTimeline(output(), marks)}`, { cause: err });
  }
}
