/**
 * A bounded open-loop load generator for the simulation: requests at a target rate from client
 * metros (each request leaves from an address in its metro's loopback subnet, so the router's
 * GeoIP sees it there), with a cap on concurrency and a hard stop. Records one sample per request.
 */
import { Agent, request } from 'undici';
import type { ClientMetro } from './client-metros.js';

export interface Sample {
  /** ms since the run started. */
  readonly at: number;
  readonly metro: string;
  readonly status: number;
  readonly latencyMs: number;
  readonly region: string | null;
  readonly route: string | null;
  readonly cold: boolean;
  readonly error: string | null;
}

export interface LoadPhase {
  /** From this second of the run on… */
  readonly fromS: number;
  /** …requests per second from each metro (metro id → rps). */
  readonly rps: Readonly<Record<string, number>>;
}

export interface LoadOptions {
  readonly port: number;
  readonly host: string;
  readonly path: string;
  readonly metros: readonly ClientMetro[];
  readonly phases: readonly LoadPhase[];
  readonly durationS: number;
  readonly maxInFlight?: number;
  /** The host of a metro's n-th request (default: `host` for all): lets a run spread over many functions. */
  readonly hostFor?: (metro: ClientMetro, n: number) => string;
  /** Called at each second boundary (scenario actions hook in here). */
  readonly onSecond?: (second: number) => void | Promise<void>;
  /**
   * Past `durationS`, the load goes on (at the last phase's rate) until `done` holds, for at most
   * `maxS` more seconds: an expectation that waits on the system (a restarted region taking
   * traffic again) gets the time a slow machine needs, and still fails when the thing never
   * happens. `done` is given the samples that came in since its last look (each sample once):
   * given all of them, every 10 ms tick of a long extension went over the whole run again.
   */
  readonly extend?: { readonly maxS: number; readonly done: (samples: readonly Sample[]) => boolean };
  /** How long the answers still coming at the end get (default 35 s: their own idle timeouts are 30 s). */
  readonly graceMs?: number;
}

/** First usable address of a metro's subnet with a varying last octet. */
export function metroAddress(metro: ClientMetro, n: number): string {
  const base = metro.subnet.split('/')[0]!.split('.');
  return `${base[0]}.${base[1]}.${base[2]}.${1 + (n % 250)}`;
}

export async function generateLoad(options: LoadOptions): Promise<Sample[]> {
  const samples: Sample[] = [];
  const agents = new Map(
    options.metros.map((m) => [
      m.id,
      // With many hosts the connection names none (SNI is left out for an IP address), so any Host may ride it.
      new Agent({ localAddress: metroAddress(m, 0), connections: 64, connect: { rejectUnauthorized: false, ...(options.hostFor === undefined ? { servername: options.host } : {}) } }),
    ]),
  );
  const started = performance.now();
  const maxInFlight = options.maxInFlight ?? 256;
  let inFlight = 0;
  const pending = new Set<Promise<void>>();
  const sent = new Map<string, number>();

  const fire = (metro: ClientMetro) => {
    if (inFlight >= maxInFlight) {
      samples.push({ at: performance.now() - started, metro: metro.id, status: 0, latencyMs: 0, region: null, route: null, cold: false, error: 'generator_saturated' });
      return;
    }
    inFlight++;
    const sentAt = performance.now();
    const n = sent.get(metro.id) ?? 0;
    sent.set(metro.id, n + 1);
    const p = request(`https://127.0.0.1:${options.port}${options.path}`, {
      dispatcher: agents.get(metro.id)!,
      headers: { host: options.hostFor === undefined ? options.host : options.hostFor(metro, n) },
      headersTimeout: 30_000,
      bodyTimeout: 30_000,
    })
      .then(async (res) => {
        // Read to its end, not dump()ed: dump() resolves for a body cut off midway (and stops at
        // 128 KiB), so an answer the router or a region cut was recorded as a whole 200.
        for await (const _chunk of res.body) void _chunk;
        const header = (name: string) => {
          const v = res.headers[name];
          return typeof v === 'string' ? v : null;
        };
        samples.push({
          at: sentAt - started,
          metro: metro.id,
          status: res.statusCode,
          latencyMs: performance.now() - sentAt,
          region: header('x-edge-region'),
          route: header('x-edge-route'),
          cold: (header('x-edge-container') ?? '').endsWith('cold'),
          error: res.statusCode >= 500 ? `http_${res.statusCode}` : null,
        });
      })
      .catch((err: Error & { code?: string }) => {
        samples.push({ at: sentAt - started, metro: metro.id, status: 0, latencyMs: performance.now() - sentAt, region: null, route: null, cold: false, error: err.code ?? err.message });
      })
      .finally(() => {
        inFlight--;
        pending.delete(p);
      });
    pending.add(p);
  };

  // Tick every 10 ms or so and fire what each metro's rate owes for the time passed since the last
  // tick (open loop: slow answers do not slow the offered load). Owed by the time passed, not a
  // fixed share per tick: ticks come late on a busy machine, and the load offered fell with them.
  const owed = new Map<string, number>();
  let second = -1;
  let firedToMs = 0;
  const endMs = options.durationS * 1_000;
  const hardEndMs = endMs + (options.extend?.maxS ?? 0) * 1_000;
  let lookedAt = 0;
  const waitedFor = (): boolean => {
    const fresh = samples.slice(lookedAt);
    lookedAt = samples.length;
    return options.extend?.done(fresh) !== false;
  };
  const goOn = (elapsedMs: number) => elapsedMs < endMs || (elapsedMs < hardEndMs && !waitedFor());
  while (goOn(performance.now() - started)) {
    const elapsedMs = performance.now() - started;
    const elapsedS = elapsedMs / 1_000;
    // Each second boundary passed, every one: a stall over one skipped the scenario action set for it.
    while (second < Math.floor(elapsedS)) {
      second += 1;
      await options.onSecond?.(second);
    }
    // A stall's debt is paid up to a second of it, not in one burst the size of the stall.
    const passedS = Math.min(1, (elapsedMs - firedToMs) / 1_000);
    firedToMs = elapsedMs;
    const phase = [...options.phases].reverse().find((p) => p.fromS <= elapsedS) ?? options.phases[0]!;
    for (const metro of options.metros) {
      const rps = phase.rps[metro.id] ?? 0;
      const due = (owed.get(metro.id) ?? 0) + rps * passedS;
      let whole = Math.floor(due);
      owed.set(metro.id, due - whole);
      while (whole-- > 0) fire(metro);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  // The answers still coming get 35 s (their own timeouts are 30 s), and the timer goes once they
  // are in: left running, it held the process for 35 s past the run, and every `npm run sim` that
  // passed ended 5 s late with exit_backstop after its report.
  let grace: NodeJS.Timeout | undefined;
  await Promise.race([Promise.allSettled([...pending]), new Promise((r) => (grace = setTimeout(r, options.graceMs ?? 35_000)))]);
  clearTimeout(grace);
  // An answer still coming past the grace (a stream whose bytes never pause for its idle timeouts)
  // is cut: close() waits for every request to end, and held the run, and `npm run sim`, for ever.
  // Cut ones are recorded before the samples are returned (they land in the array otherwise).
  const cut = pending.size > 0;
  const left = [...pending];
  await Promise.all([...agents.values()].map((a) => (cut ? a.destroy() : a.close()).catch(() => undefined)));
  await Promise.allSettled(left);
  return samples.sort((a, b) => a.at - b.at);
}
