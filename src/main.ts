/** Composition root of the `edge-router` executable: real process streams in, exit code out. */
import cluster from 'node:cluster';
import { runCli } from './cli/run-cli.js';
import { settleLogs } from './observability/logger.js';

// SIGTERM / SIGINT ask long-running commands to stop cleanly; a second signal forces the exit.
// Not in a cluster worker: Ctrl-C reaches it from the terminal and again from the primary's
// SIGTERM, and it must still drain; the primary kills it if the drain overruns.
const stop = new AbortController();
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (stop.signal.aborted && cluster.isPrimary) process.exit(130);
    stop.abort();
  });
}

const code = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: process.stdin,
  env: process.env,
  signal: stop.signal,
});
process.exitCode = code;
// A command that failed may have started things (a registry connection, watchers) before it
// failed; they must not keep a broken process alive. Its log goes out first (a few seconds at
// most): the lines that say why it failed are the ones an operator needs.
if (code !== 0) {
  await settleLogs(3_000);
  process.exit(code);
}
