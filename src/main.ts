/** Composition root of the `edge-router` executable: real process streams in, exit code out. */
import { runCli } from './cli/run-cli.js';

const code = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: process.stdin,
  env: process.env,
});
process.exitCode = code;
