/** The process surface a command may touch, injected so commands run in-process under test. */
import type { Readable, Writable } from 'node:stream';

export interface CliIo {
  readonly stdout: Writable;
  readonly stderr: Writable;
  readonly stdin: Readable;
  readonly env: NodeJS.ProcessEnv;
}

export function writeLine(stream: Writable, text: string): void {
  stream.write(`${text}\n`);
}
