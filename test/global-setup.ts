/**
 * Builds dist/ once before the suite: a few tests run the real `edge-router` executable as a
 * separate process (cluster workers, signals, `npm start`), which needs the compiled output.
 */
import { execFileSync } from 'node:child_process';

export default function setup(): void {
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
}
