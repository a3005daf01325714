import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

/** Runs a script in a child process (against the built logger) and returns its stdout. */
function run(script: string, options: { readAfterMs?: number } = {}): Promise<{ code: number | null; stdout: string }> {
  const logger = join(process.cwd(), 'dist', 'src', 'observability', 'logger.js');
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', `import { createLogger, settleLogs } from ${JSON.stringify(logger)};\n${script}`], { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.setEncoding('utf8');
    // A reader slower than the log: nothing is read until readAfterMs, so the pipe fills.
    const read = () => child.stdout.on('data', (chunk: string) => (stdout += chunk));
    if (options.readAfterMs === undefined) read();
    else setTimeout(read, options.readAfterMs);
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

  it('settles every line before a forced exit, even while stdout is slower than the log', async () => {
    // 20,000 lines of 250 bytes fill the pipe many times over: a batch is under way when the
    // process exits. Without settleLogs that batch (up to 64 KiB of lines) was lost.
    const { code, stdout } = await run(
      // process.stdout is touched first, as the executable does (which makes the pipe non-blocking).
      `process.stdout; const log = createLogger('info'); for (let i = 0; i < 20000; i++) log.info({ i, pad: 'x'.repeat(200) }, 'line'); setTimeout(async () => { await settleLogs(30000); process.exit(3); }, 50);`,
      { readAfterMs: 1_000 },
    );
    expect(code).toBe(3);
    const ids = stdout.trimEnd().split('\n').map((l) => (JSON.parse(l) as { i: number }).i);
    expect(ids).toEqual(Array.from({ length: 20_000 }, (_, i) => i));
  });

  it('writes a lone line at exit', async () => {
    const { stdout } = await run(`createLogger('info').warn({ event: 'only' }, 'one');`);
    expect((JSON.parse(stdout) as { event: string }).event).toBe('only');
  });
});
