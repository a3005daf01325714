/** Composition root of the `edge-router` executable: real process streams in, exit code out. */
import cluster from 'node:cluster';
import { FAULT_STOP } from './cli/io.js';
import { runCli } from './cli/run-cli.js';
import { logLineOutside, settleLogs } from './observability/process-log.js';
import { thrownText } from './core/errors.js';

// SIGTERM / SIGINT ask long-running commands to stop cleanly; a second signal forces the exit.
// Not in a cluster worker: Ctrl-C reaches it from the terminal and again from the primary's
// SIGTERM, and it must still drain; the primary kills it if the drain overruns.
// The forced exit says so: without a line, the requests and WebSockets it cuts (they get no access
// line) looked like a process that vanished. Its log gets a moment to leave, no more.
// A fault's drain (below) is not a first signal: a service manager's stop during it is one.
const stop = new AbortController();
let signalled = false;
let forcing = false;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    const second = signalled;
    signalled = true;
    if (second && cluster.isPrimary) {
      if (forcing) return;
      forcing = true;
      const line = { level: 50, time: Date.now(), pid: process.pid, event: 'forced_exit', signal, msg: 'a second signal during the drain: exiting now; whatever is still in progress is cut' };
      logLineOutside(`${JSON.stringify(line)}\n`);
      void settleLogs(500).finally(() => process.exit(130));
      return;
    }
    if (!stop.signal.aborted) stop.abort();
  });
}

// A fault outside every handler (a throw in a timer or callback no fault guard covers) leaves this
// process in a state nothing vouches for. Dying at once would cut every other client's request in
// flight with it (seen in review: one `GET / HTTP/2.0` line did that): it stops taking work and
// drains as on SIGTERM (readiness off, listeners closed, requests in flight finish within the drain
// timeout), then exits 70 (EX_SOFTWARE), for the cluster primary or the service manager to start
// a fresh one. A second fault during the drain exits at once.
const FAULT_EXIT_CODE = 70;
/** How long a command that is over may take to end on its own (below). */
const EXIT_BACKSTOP_MS = 5_000;
let faulted = false;
process.on('uncaughtException', (err) => {
  const line = { level: 60, time: Date.now(), pid: process.pid, event: 'fault', error: thrownText(err), stack: err instanceof Error ? err.stack : undefined, msg: 'uncaught exception: draining, then exiting' };
  logLineOutside(`${JSON.stringify(line)}\n`);
  if (faulted) process.exit(FAULT_EXIT_CODE);
  faulted = true;
  stop.abort(FAULT_STOP);
});

const code = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: process.stdin,
  env: process.env,
  signal: stop.signal,
});
const exitCode = faulted ? FAULT_EXIT_CODE : code;
process.exitCode = exitCode;
// A command that failed may have started things (a registry connection, watchers) before it
// failed; they must not keep a broken process alive. Its log goes out first (a few seconds at
// most): the lines that say why it failed are the ones an operator needs.
if (exitCode !== 0) {
  await settleLogs(3_000);
  process.exit(exitCode);
}
// Done, and nothing left to do: the process ends when its event loop is empty. Something a
// component forgot (a timer, a socket) would keep it alive past any service manager's grace
// period with nothing to show for it (seen in review: a cut WebSocket's send timer, 30 s past the
// drain). After a moment it exits anyway, and says so, with what held it by kind (ref'd timers
// `Timeout`, sockets `TCPSocketWrap`, pipes `PipeWrap`, child processes `ProcessWrap`…; stdio's
// own `TTYWrap`/`PipeWrap` are listed too but hold nothing): without it, a leak seen once on a
// loaded host could not be told apart from the rest. Unref'd: it holds nothing itself.
setTimeout(() => {
  const holding: Record<string, number> = {};
  for (const kind of process.getActiveResourcesInfo()) holding[kind] = (holding[kind] ?? 0) + 1;
  const line = { level: 40, time: Date.now(), pid: process.pid, event: 'exit_backstop', holding, msg: `the command was over ${EXIT_BACKSTOP_MS} ms ago but something still held the process: exiting` };
  logLineOutside(`${JSON.stringify(line)}\n`);
  void settleLogs(1_000).finally(() => process.exit(exitCode));
}, EXIT_BACKSTOP_MS).unref();
