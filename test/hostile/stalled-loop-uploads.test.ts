/**
 * A stalled event loop is not a stalled client. When the router's process is blocked (a long
 * collection, a starved CPU, a synchronous task) for longer than --body-idle-timeout, the bytes its
 * uploads sent meanwhile wait in the kernel; the watchdog's late sweep must not judge them idle
 * before Node has read them. An upload that really sent nothing is still cut.
 *
 * The uploads come from another process, so they keep sending while this one (the router's) is blocked.
 * The timeout (1 s) is twice the margin a starved client process could need on a busy CI host; the
 * block (2 s) is twice the timeout.
 */
import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { HOST } from '../support/clients.js';
import { Cleanup, hostileSetup, LONDON } from '../support/hostile.js';
import { until } from '../support/until.js';

const cleanup = new Cleanup();
afterEach(cleanup.run);

const STEADY = 20;

/**
 * The client process: STEADY uploads that send 64 bytes every 50 ms for 4 s, and one that sends
 * a chunk and then nothing. Prints `ready` once every upload has sent its first chunk, then one
 * JSON line per upload with its status (0: cut without an answer).
 */
const CLIENT = `
const https = require('node:https');
const [port, host, localAddress, steady] = process.argv.slice(1);
const agent = new https.Agent({ keepAlive: false, maxSockets: Infinity });
let started = 0;
const total = Number(steady) + 1;
function upload(path, sendFor) {
  return new Promise((resolve) => {
    const req = https.request({ host: '127.0.0.1', port: Number(port), path, method: 'POST', agent, localAddress, servername: host, rejectUnauthorized: false, headers: { host, 'transfer-encoding': 'chunked' } });
    let timer;
    const done = (status) => { clearInterval(timer); resolve({ path, status }); };
    req.on('response', (res) => { res.resume(); res.on('end', () => done(res.statusCode)); });
    req.on('error', () => done(0));
    req.on('socket', (socket) => socket.once('secureConnect', () => {
      req.write('x'.repeat(64));
      if (++started === total) console.log('ready');
      if (sendFor === 0) return;
      const until = Date.now() + sendFor;
      timer = setInterval(() => (Date.now() < until ? req.write('x'.repeat(64)) : (clearInterval(timer), req.end())), 50);
    }));
  });
}
const uploads = Array.from({ length: Number(steady) }, (_, i) => upload('/steady-' + i, 4000));
uploads.push(upload('/idle', 0));
Promise.all(uploads).then((results) => { for (const r of results) console.log(JSON.stringify(r)); process.exit(0); });
setTimeout(() => process.exit(1), 15000).unref();
`;

function blockFor(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    // the router's whole process stalls: no timer, no read, nothing
  }
}

describe('hostile clients: uploads across a stalled event loop', () => {
  it('cuts no upload that kept sending while the router was blocked past its body idle timeout, and still cuts one that sent nothing', async () => {
    const { router } = await hostileSetup(cleanup, ['--body-idle-timeout', '1000', '--body-min-rate', '0']);
    const client = spawn(process.execPath, ['-e', CLIENT, String(router.httpsPort), HOST, LONDON, String(STEADY)], { stdio: ['ignore', 'pipe', 'inherit'] });
    cleanup.add(() => client.kill());
    const lines: string[] = [];
    let blockedAt = 0;
    let output = '';
    client.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const complete = output.split('\n');
      output = complete.pop()!;
      lines.push(...complete);
      // Blocked while every upload is under way and the idle one has been quiet for less than its
      // timeout. From an immediate: the loop's next turn starts with its timers, the watchdog's
      // late sweep among them, before it reads what arrived meanwhile. (Blocked in a timer, the
      // sweep would wait for the next turn, the reads first, as Node's timer list keeps its clock.)
      if (blockedAt === 0 && lines.includes('ready')) {
        blockedAt = Date.now();
        setTimeout(() => setImmediate(() => blockFor(2_000)), 100);
      }
    });
    const exited = new Promise<number | null>((resolve) => client.once('exit', resolve));
    expect(await exited).toBe(0);
    const results = lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { path: string; status: number });
    expect(blockedAt).toBeGreaterThan(0);
    expect(results).toHaveLength(STEADY + 1);
    const cut = results.filter((r) => r.path !== '/idle' && r.status !== 200);
    expect(cut).toEqual([]);
    expect(results.find((r) => r.path === '/idle')!.status).toBe(408);
    await until('every upload logged', () => router.access.filter((a) => a.path.startsWith('/steady-') || a.path === '/idle').length === STEADY + 1);
    expect(router.access.filter((a) => a.error === 'body_idle_timeout').map((a) => a.path)).toEqual(['/idle']);
  });
});
