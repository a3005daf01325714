/** HTTP-01 answers over a real plain HTTP server, read from a vault (the memory one, or a failing or slow stand-in). */
import { once } from 'node:events';
import { createServer, request, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import type { CertificateVault } from '../../src/core/certificate-vault.js';
import { createAcmeChallengeResponder } from '../../src/ingress/acme-challenge.js';
import { MemoryCertificateVault } from '../../src/registry/memory-certificate-vault.js';

const TOKEN = 'LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0';

let server: Server | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  server?.close();
  server = undefined;
});

async function serve(vault: Pick<CertificateVault, 'readChallenge'>, maxLookups?: number): Promise<{ port: number; errors: unknown[] }> {
  const errors: unknown[] = [];
  const answer = createAcmeChallengeResponder({ vault, onError: (err) => errors.push(err), ...(maxLookups === undefined ? {} : { maxLookups }) });
  server = createServer((req, res) => {
    if (!answer(req, res)) res.writeHead(418).end('not a challenge');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as { port: number }).port, errors };
}

function fetch(port: number, path: string, method = 'GET'): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers: { host: 'shop.example.net' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('the HTTP-01 responder', () => {
  it('answers a stored token with its key authorisation, uncached; anything else under the path is 404; other paths pass on', async () => {
    const vault = new MemoryCertificateVault();
    await vault.putChallenge(TOKEN, `${TOKEN}.thumbprint`, 60_000);
    const { port } = await serve(vault);
    expect(await fetch(port, `/.well-known/acme-challenge/${TOKEN}`)).toMatchObject({ status: 200, body: `${TOKEN}.thumbprint`, headers: { 'cache-control': 'no-store' } });
    expect(await fetch(port, `/.well-known/acme-challenge/${TOKEN}`, 'HEAD')).toMatchObject({ status: 200, body: '' });
    for (const path of [`/.well-known/acme-challenge/${TOKEN.slice(1)}`, '/.well-known/acme-challenge/', '/.well-known/acme-challenge/short', `/.well-known/acme-challenge/${TOKEN}/x`, `/.well-known/acme-challenge/${TOKEN}?q=1`, `/.well-known/acme-challenge/${'a'.repeat(200)}`]) {
      expect((await fetch(port, path)).status, path).toBe(404);
    }
    expect((await fetch(port, `/.well-known/acme-challenge/${TOKEN}`, 'POST')).status).toBe(404);
    expect(await fetch(port, '/index.html')).toMatchObject({ status: 418 });
  });

  it('looks up only well-formed tokens, at most maxLookups at once (503 beyond), and answers 503 when the vault fails', async () => {
    const asked: string[] = [];
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const slow = {
      readChallenge: async (token: string) => {
        asked.push(token);
        await gate;
        if (token.startsWith('fail')) throw new Error('the registry is unreachable');
        return null;
      },
    };
    const { port, errors } = await serve(slow, 2);
    const pending = [fetch(port, `/.well-known/acme-challenge/${'a'.repeat(43)}`), fetch(port, `/.well-known/acme-challenge/fail${'b'.repeat(39)}`)];
    while (asked.length < 2) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(await fetch(port, `/.well-known/acme-challenge/${'c'.repeat(43)}`)).toMatchObject({ status: 503, headers: { 'retry-after': '1' } });
    expect(await fetch(port, '/.well-known/acme-challenge/<script>')).toMatchObject({ status: 404 });
    release();
    expect((await Promise.all(pending)).map((r) => r.status)).toEqual([404, 503]);
    expect(asked).toHaveLength(2);
    expect(errors).toHaveLength(1);
    expect((await fetch(port, `/.well-known/acme-challenge/${'d'.repeat(43)}`)).status).toBe(404); // places given back
  });
});
