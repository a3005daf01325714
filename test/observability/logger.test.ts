import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PIPE_BUF, pipeSizedChunks } from '../../src/observability/logger.js';

/** Runs a script in a child process (against the built logger) and returns its stdout. */
function run(script: string, options: { readAfterMs?: number } = {}): Promise<{ code: number | null; stdout: string }> {
  const logger = join(process.cwd(), 'dist', 'src', 'observability', 'logger.js');
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', `import { createLogger, logLinesDropped, settleLogs } from ${JSON.stringify(logger)};\n${script}`], { stdio: ['ignore', 'pipe', 'inherit'] });
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

/** The lines that are not JSON (cut, or glued to another), each as its first 120 characters. */
function unparsable(lines: readonly string[]): string[] {
  return lines.filter((l) => {
    try {
      JSON.parse(l);
      return false;
    } catch {
      return true;
    }
  }).map((l) => l.slice(0, 120));
}

/**
 * Runs a module script (a file, not -e: cluster workers run the primary's script file again) with
 * stdout a pipe whose reader reads nothing for its first second, and returns what it read. A FIFO
 * made by the shell: Node's own child pipes are sockets, and one whose reader had not begun was
 * seen closed by the child's exit with nothing read.
 */
function runIntoStalledPipe(script: string): Promise<string> {
  const file = join(mkdtempSync(join(tmpdir(), 'log-pipe-')), 'script.mjs');
  writeFileSync(file, script);
  return new Promise<string>((resolve, reject) => {
    const child = spawn('sh', ['-c', '"$0" "$1" | (sleep 1; cat)', process.execPath, file], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => (out += chunk));
    child.once('error', reject);
    child.once('close', () => resolve(out));
  });
}

describe('the process logger on stdout', () => {
  it('drops its lines, and neither stops the process nor hangs its exit, when stdout fails to write (a full disk)', async () => {
    // ENOSPC reached the process as an uncaught exception (a router's fault: drain, exit 70), and
    // at exit sonic-boom retried the failing write for ever, 100 ms at a time.
    const logger = join(process.cwd(), 'dist', 'src', 'observability', 'logger.js');
    const full = openSync('/dev/full', 'w');
    const child = spawn(
      process.execPath,
      ['--input-type=module', '-e', `import { createLogger } from ${JSON.stringify(logger)};\nprocess.stdout; const log = createLogger('info'); for (let i = 0; i < 2000; i++) log.info({ i }, 'line'); setTimeout(() => { log.info('later'); setTimeout(() => process.exit(0), 300); }, 300);`],
      { stdio: ['ignore', full, 'pipe'] },
    );
    closeSync(full);
    let stderr = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => (stderr += chunk));
    const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    const code = await new Promise<number | null>((resolve) => child.once('close', (exitCode) => resolve(exitCode)));
    clearTimeout(killer);
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
  });

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

  it('counts the lines it drops while stdout stays blocked, and says so in the log once lines get through again', async () => {
    // 100,000 lines of 300 bytes at once, nothing read for a second: past the 16 MiB it holds, whole
    // batches are dropped. Before, nothing told: the access log had holes no one could see.
    const { code, stdout } = await run(
      `process.stdout; const log = createLogger('info'); for (let i = 0; i < 100000; i++) log.info({ i, pad: 'x'.repeat(300) }, 'line'); setTimeout(async () => { await settleLogs(30000); log.info({ dropped: logLinesDropped() }, 'count'); await settleLogs(30000); process.exit(0); }, 50);`,
      { readAfterMs: 1_000 },
    );
    expect(code).toBe(0);
    const entries = stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as { msg: string; event?: string; lines?: number; dropped?: number });
    const written = entries.filter((e) => e.msg === 'line').length;
    const dropped = entries.find((e) => e.msg === 'count')!.dropped!;
    expect(dropped).toBeGreaterThan(0);
    expect(written + dropped).toBe(100_000);
    const told = entries.filter((e) => e.event === 'log_dropped').reduce((sum, e) => sum + e.lines!, 0);
    expect(told).toBe(dropped);
  }, 60_000);

  it('writes its last batch at exit into a stdout pipe that is full until its reader reads again', async () => {
    // The pipe is filled first (a log shipper behind): the lines of the last batch, not yet handed
    // on, are written by the exit's own writes, which met EAGAIN (non-blocking stdout) and lost them.
    const logger = join(process.cwd(), 'dist', 'src', 'observability', 'logger.js');
    const stdout = await runIntoStalledPipe(`
      import { writeSync } from 'node:fs';
      import { createLogger } from ${JSON.stringify(logger)};
      process.stdout;
      const fill = Buffer.from('{"fill":"' + 'x'.repeat(500) + '"}\\n');
      try { for (let i = 0; i < 100000; i++) writeSync(1, fill); } catch (err) { if (err.code !== 'EAGAIN') throw err; }
      const log = createLogger('info');
      for (let i = 0; i < 50; i++) log.info({ i }, 'line');
      log.warn({ event: 'marker' }, 'the last line');
      process.exit(0);`);
    expect(stdout).toMatch(/"i":49,"msg":"line"\}\n\{"level":40,[^\n]*"event":"marker","msg":"the last line"\}\n$/);
  });

  it("ends an exit within its deadline while stdout's reader reads nothing at all", async () => {
    // The pipe is full and the batch handed on meets EAGAIN. At exit, sonic-boom's synchronous flush
    // (run by pino on 'exit') retried it for ever, 100 ms at a time: a forced exit (a second signal,
    // the exit backstop) never ended while a log shipper was stuck.
    const logger = join(process.cwd(), 'dist', 'src', 'observability', 'logger.js');
    const file = join(mkdtempSync(join(tmpdir(), 'log-pipe-')), 'script.mjs');
    writeFileSync(file, `
      import { writeSync } from 'node:fs';
      import { createLogger } from ${JSON.stringify(logger)};
      process.stdout;
      const fill = Buffer.from('{"fill":"' + 'x'.repeat(500) + '"}\\n');
      try { for (let i = 0; i < 100000; i++) writeSync(1, fill); } catch (err) { if (err.code !== 'EAGAIN') throw err; }
      const log = createLogger('info');
      for (let i = 0; i < 2000; i++) log.info({ i, pad: 'x'.repeat(100) }, 'line');
      setTimeout(() => process.exit(130), 300);`);
    // The reader (sleep) never reads; the subshell says when node is done, on stderr.
    const child = spawn('sh', ['-c', '{ "$0" "$1"; echo "exited $?" >&2; } | sleep 60', process.execPath, file], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    const startedAt = Date.now();
    try {
      let stderr = '';
      child.stderr.setEncoding('utf8');
      const exited = await new Promise<string>((resolve) => {
        child.stderr.on('data', (chunk: string) => {
          stderr += chunk;
          const said = /exited (\d+)/.exec(stderr);
          if (said !== null) resolve(said[1]!);
        });
        setTimeout(() => resolve(`still running: ${stderr}`), 15_000);
      });
      expect(exited).toBe('130');
      // EXIT_WRITE_MS (5 s), and a moment.
      expect(Date.now() - startedAt).toBeLessThan(9_000);
    } finally {
      process.kill(-child.pid!, 'SIGKILL');
    }
  }, 20_000);

  it('keeps every line whole when it exits in the middle of a write to a stdout pipe whose reader is behind', async () => {
    // One process alone on stdout: a 64 KiB batch handed on whole was taken in part by the full pipe,
    // and the exit's flush wrote the batches after it behind the part taken, a line cut in two and
    // glued to another (invalid JSON, or one line forged out of two).
    const logger = join(process.cwd(), 'dist', 'src', 'observability', 'logger.js');
    const stdout = await runIntoStalledPipe(`
      import { createLogger, settleLogs } from ${JSON.stringify(logger)};
      process.stdout;
      const log = createLogger('info');
      for (let i = 0; i < 20000; i++) log.info({ i, pad: 'x'.repeat(200) }, 'line');
      setTimeout(async () => { await settleLogs(20); process.exit(0); }, 50);`);
    expect(unparsable(stdout.trimEnd().split('\n'))).toEqual([]);
  });

  it("hands its lines on at logger.flush(), not at the batch's next tick", async () => {
    // Killed 50 ms after the flush: no exit handler runs, and the batch's own tick (200 ms) has not come.
    const { stdout } = await run(`const log = createLogger('info'); log.warn({ event: 'flushed' }, 'one'); log.flush(); setTimeout(() => process.kill(process.pid, 'SIGKILL'), 50);`);
    expect((JSON.parse(stdout) as { event: string }).event).toBe('flushed');
  });

  it('writes a lone line at exit', async () => {
    const { stdout } = await run(`createLogger('info').warn({ event: 'only' }, 'one');`);
    expect((JSON.parse(stdout) as { event: string }).event).toBe('only');
  });

  it('keeps every line whole when cluster workers share stdout, a pipe, and its reader is slower than the log', async () => {
    // Under Docker or Kubernetes stdout is a pipe (a FIFO; Node's own child pipes are sockets, so
    // the shell makes it): 4 workers' 64 KiB batches were taken in parts by a full pipe and mixed
    // mid-line, dozens of lines in 40,000 spliced into one another.
    const logger = join(process.cwd(), 'dist', 'src', 'observability', 'logger.js');
    const script = `
      import cluster from 'node:cluster';
      import { createLogger, settleLogs } from ${JSON.stringify(logger)};
      if (cluster.isPrimary) {
        let left = 4;
        for (let w = 0; w < 4; w++) cluster.fork().on('exit', () => { if (--left === 0) process.exit(0); });
      } else {
        process.stdout;
        const log = createLogger('info');
        for (let i = 0; i < 10000; i++) log.info({ w: cluster.worker.id, i, pad: 'x'.repeat(200) }, 'line');
        setTimeout(async () => { await settleLogs(30000); process.exit(0); }, 50);
      }`;
    const stdout = await runIntoStalledPipe(script);
    const lines = stdout.trimEnd().split('\n');
    expect(unparsable(lines)).toEqual([]);
    const seen = new Set(lines.map((l) => { const { w, i } = JSON.parse(l) as { w: number; i: number }; return `${w}:${i}`; }));
    expect(seen.size).toBe(40_000);
  }, 60_000);
});

describe('pipeSizedChunks', () => {
  const pieces = (text: string, limit?: number) => pipeSizedChunks(Buffer.from(text), limit).map((b) => b.toString());

  it('cuts whole lines into pieces of at most PIPE_BUF bytes, in order, counting bytes not characters', () => {
    const lines = Array.from({ length: 200 }, (_, i) => `{"i":${i},"city":"Zürich 😀 ${'é'.repeat(i % 50)}"}\n`);
    const text = lines.join('');
    const chunks = pipeSizedChunks(Buffer.from(text));
    expect(Buffer.concat(chunks).toString()).toBe(text);
    expect(chunks.length).toBeGreaterThan(1);
    for (const c of chunks) {
      expect(c.length).toBeLessThanOrEqual(PIPE_BUF);
      expect(c[c.length - 1]).toBe(0x0a);
      // Whole lines: every piece is valid UTF-8 on its own.
      expect(c.toString().includes('\ufffd')).toBe(false);
    }
    // A line longer than the limit goes alone; a short text stays one piece.
    const long = `${'x'.repeat(5000)}\n`;
    expect(pieces(`a\n${long}b\n`)).toEqual(['a\n', long, 'b\n']);
    expect(pieces(`${long}${long}`)).toEqual([long, long]);
    expect(pieces('a\nb\n')).toEqual(['a\nb\n']);
  });

  it.each([
    ['exactly the limit', 'abc\ndef\n', 8, ['abc\ndef\n']],
    ['one byte over: cut at the line before', 'abc\ndefg\n', 8, ['abc\n', 'defg\n']],
    ['a line end right at the limit', 'abcdefg\nh\n', 8, ['abcdefg\n', 'h\n']],
    ['several pieces, greedily full', 'ab\ncd\nef\ngh\nij\n', 6, ['ab\ncd\n', 'ef\ngh\n', 'ij\n']],
    ['a long first line, then short ones', 'abcdefghij\nk\nl\n', 4, ['abcdefghij\n', 'k\nl\n']],
  ])('%s', (_name, text, limit, expected) => {
    expect(pieces(text, limit)).toEqual(expected);
  });
});
