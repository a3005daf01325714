import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

/** Runs a script in a child process (against the built logger) and returns its stdout. */
function run(script: string): Promise<{ code: number | null; stdout: string }> {
  const logger = join(process.cwd(), 'dist', 'src', 'observability', 'logger.js');
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', `import { createLogger } from ${JSON.stringify(logger)};\n${script}`], { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout }));
  });
}

describe('the process logger on stdout', () => {
  it('loses no line at exit, in order, whole, with characters beyond ASCII, however many batches it took', async () => {
    // No timer is left to flush: the lines still in the batch go out on 'exit'.
    const { code, stdout } = await run(`const log = createLogger('info'); for (let i = 0; i < 3000; i++) log.info({ i, city: 'Zürich 😀' }, 'line'); process.exit(0);`);
    expect(code).toBe(0);
    const lines = stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as { i: number; city: string; msg: string });
    expect(lines.map((l) => l.i)).toEqual(Array.from({ length: 3000 }, (_, i) => i));
    expect(lines.every((l) => l.city === 'Zürich 😀' && l.msg === 'line')).toBe(true);
  });

  it('writes a lone line at exit', async () => {
    const { stdout } = await run(`createLogger('info').warn({ event: 'only' }, 'one');`);
    expect((JSON.parse(stdout) as { event: string }).event).toBe('only');
  });
});
