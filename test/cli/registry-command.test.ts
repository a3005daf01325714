import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli } from '../support/cli.js';
import { freePort, TestRedisServer } from '../support/redis-server.js';
import { redisKeyspace } from '../support/redis-keyspace.js';
import { REDIS_MISSING } from '../support/system-program.js';

describe.skipIf(REDIS_MISSING)('edge-router registry', () => {
  const { url: REDIS, prefix: PREFIX, raw } = redisKeyspace('registry');
  const env = { REDIS_URL: REDIS, EDGE_REDIS_PREFIX: PREFIX };
  const registry = (...args: string[]) => cli(['registry', ...args], { env });
  // Two more registries of their own (another prefix stands in for another Redis) for backups.
  const source = redisKeyspace('registry-export');
  const target = redisKeyspace('registry-import');
  const redisKeyspaceEmpty = redisKeyspace('registry-empty');
  const strandedImport = redisKeyspace('registry-stranded-import');
  const ruledImport = redisKeyspace('registry-ruled-import');
  const lockedExport = redisKeyspace('registry-locked-export');
  const lockedImport = redisKeyspace('registry-locked-import');
  const marsExport = redisKeyspace('registry-mars-export');
  const marsImport = redisKeyspace('registry-mars-import');
  const mistypedImport = redisKeyspace('registry-mistyped-import');
  const lockedEvents = redisKeyspace('registry-locked-events');
  const newerSchema = redisKeyspace('registry-newer-schema');
  const roundTrip = redisKeyspace('registry-round-trip');
  // One registry per key broken by hand, each holding a function, a rule, a domain and an override.
  const UNREADABLE_KEYS = ['residency', 'functions', 'domains', 'overrides', 'generation'] as const;
  const brokenKey = Object.fromEntries(UNREADABLE_KEYS.map((name) => [name, redisKeyspace(`registry-broken-${name}`)]));
  const inRegistry = (space: { url: string; prefix: string }) => (...args: string[]) =>
    cli(['registry', ...args], { env: { REDIS_URL: space.url, EDGE_REDIS_PREFIX: space.prefix } });
  /** A backup file of these functions and residency rules (nothing else), written to a new directory. */
  const backupFile = async (name: string, functions: Array<{ org: string; fn: string; regions: string[] }>, residency: Record<string, string[]>) => {
    const backup = {
      format: 'edge-router-registry-backup',
      version: 1,
      exportedAt: 'x',
      generation: null,
      functions: functions.map((f) => ({ ...f, tier: 'standard', enabled: true })),
      residency,
      domains: {},
      overrides: {},
    };
    const file = join(await mkdtemp(join(tmpdir(), 'edge-router-backup-')), name);
    await writeFile(file, JSON.stringify(backup));
    return { file, backup };
  };

  it('drains and undrains a region, which explain --redis then honours', async () => {
    expect(await registry('drain', 'nyc')).toMatchObject({ code: 0, stdout: 'nyc: drained\n' });
    const status = JSON.parse((await registry('status', '--json')).stdout);
    expect(status.regions.find((r: { id: string }) => r.id === 'nyc')).toMatchObject({ drained: true, status: 'down', heartbeatAgeMs: null, latencyMs: { p50: null, p99: null }, serviceMs: null });
    // No request served: no times, not 0/0 ms (which reads as the fastest region).
    const nycLine = (await registry('status')).stdout.split('\n').find((line) => line.startsWith('nyc '));
    expect(nycLine).toMatch(/^nyc +down +never +0\/\d+\/\d+ +0 +- +- +yes /);
    // Boston (no GeoIP needed: London's sim subnet is nearest fra; use the Toronto metro, nearest nyc).
    const explained = await cli(
      ['explain', '--host', 'echo-demo.telnyxcompute.com', '--ip', '127.3.0.1', '--unknown-functions', 'forward', '--json'],
      { env },
    );
    // No region has a heartbeat in this fresh registry: panic mode, still in distance order.
    expect(JSON.parse(explained.stdout)).toMatchObject({ region: 'nyc', reason: 'panic' });
    expect((await registry('undrain', 'nyc')).code).toBe(0);
    const events = JSON.parse((await registry('events', '--json')).stdout);
    expect(events.slice(0, 2).map((e: { kind: string }) => e.kind)).toEqual(['undrained', 'drained']);
  });

  it.each([
    [['drain', 'atl', 'nyc'], 'drain: expected at most 1 word after it, got "nyc" too'],
    [['weight', 'fra', '3', '4'], 'weight: expected at most 2 words after it, got "4" too'],
    [['status', 'now'], 'status: expected at most 0 words after it, got "now" too'],
  ])('refuses %j without writing anything: a word past those an action reads is not dropped', async (args, message) => {
    const overrides = async () =>
      (JSON.parse((await registry('status', '--json')).stdout) as { regions: { id: string; drained: boolean; weight: number }[] }).regions.map((r) => [r.id, r.drained, r.weight]);
    const before = await overrides();
    expect(await registry(...args)).toMatchObject({ code: 2, stderr: expect.stringContaining(message) });
    expect(await overrides()).toEqual(before);
  });

  it('sets weights within 0-100 only', async () => {
    expect((await registry('weight', 'fra', '3')).code).toBe(0);
    expect(JSON.parse(await raw.hget(`${PREFIX}overrides`, 'fra') ?? 'null')).toEqual({ drained: false, weight: 3 });
    const bad = await registry('weight', 'fra', '101');
    expect(bad).toMatchObject({ code: 2, stderr: expect.stringContaining('weight: expected a decimal number from 0 to 100 (such as 25 or 12.5), or default (the regions file\'s weight), got "101"') });
    // Number() took each of these (as 0, 0, 32, 100, 2 and 2): now each is refused and the weight stays.
    for (const typo of ['', ' ', '0x20', '1e2', '2.', '+2']) {
      const refused = await registry('weight', 'fra', typo);
      expect(refused, typo).toMatchObject({ code: 2, stderr: expect.stringContaining(`weight: expected a decimal number from 0 to 100 (such as 25 or 12.5), or default (the regions file's weight), got ${JSON.stringify(typo)}`) });
    }
    expect(await registry('weight', 'fra')).toMatchObject({ code: 2, stderr: expect.stringContaining('weight: expected a decimal number from 0 to 100 (such as 25 or 12.5), or default (the regions file\'s weight), got none') });
    expect(JSON.parse(await raw.hget(`${PREFIX}overrides`, 'fra') ?? 'null')).toEqual({ drained: false, weight: 3 });
    expect(await registry('weight', 'fra', '12.5')).toMatchObject({ code: 0, stdout: 'fra: weight 12.5\n' });
    expect(await registry('weight', 'fra', '0')).toMatchObject({ code: 0, stdout: 'fra: weight 0\n' });
    expect((await registry('weight', 'fra', '3')).code).toBe(0);
  });

  it("takes a region back to the regions file's weight with `default`, which no number could do", async () => {
    expect((await registry('weight', 'fra', '3')).code).toBe(0);
    expect(await registry('weight', 'fra', 'default')).toMatchObject({ code: 0, stdout: "fra: the regions file's weight\n" });
    expect(JSON.parse(await raw.hget(`${PREFIX}overrides`, 'fra') ?? 'null')).toEqual({ drained: false, weight: null });
    const events = JSON.parse((await registry('events', '--json', '--limit', '1')).stdout) as { kind: string; cause: string }[];
    expect(events.map((e) => [e.kind, e.cause])).toEqual([['weight', "operator (CLI) set the regions file's weight"]]);
    expect((await registry('weight', 'fra', 'Default')).code).toBe(2);
  });

  it('says a deployed function is disabled, as it says its tier and hedging', async () => {
    // Before: "deployed off (org acme) in atl, standard tier", the same as for an enabled one.
    expect(await registry('deploy', '--org', 'acme', '--fn', 'off', '--regions', 'atl', '--disabled', '--hedge')).toMatchObject({
      code: 0,
      stdout: 'deployed off (org acme) in atl, standard tier, disabled, hedging on\n',
    });
    expect(await registry('deploy', '--org', 'acme', '--fn', 'off', '--regions', 'atl')).toMatchObject({ code: 0, stdout: 'deployed off (org acme) in atl, standard tier\n' });
    // The event log says it too: disabling a function read there as the same deploy it replaced.
    const events = JSON.parse((await registry('events', '--json', '--limit', '2')).stdout) as { kind: string; cause: string }[];
    expect(events.map((e) => e.cause)).toEqual(['acme/off in atl (standard; CLI)', 'acme/off in atl (standard, disabled, hedging on; CLI)']);
    expect((await registry('undeploy', '--org', 'acme', '--fn', 'off')).code).toBe(0);
  });

  it('deploys and undeploys functions; explain --redis sees the directory', async () => {
    expect((await registry('deploy', '--org', 'acme', '--fn', 'checkout', '--regions', 'lax,syd', '--tier', 'extended')).code).toBe(0);
    const explained = await cli(['explain', '--host', 'checkout-acme.telnyxcompute.com', '--ip', '127.8.0.1', '--json'], { env });
    expect(JSON.parse(explained.stdout)).toMatchObject({ fn: 'checkout', org: 'acme' });
    expect(JSON.parse(explained.stdout).ranking.filter((r: { skipped?: string }) => r.skipped === 'not-deployed').map((r: { region: string }) => r.region)).toEqual([
      'fra',
      'nyc',
      'atl',
    ]);
    const missing = await cli(['explain', '--host', 'nothere-acme.telnyxcompute.com', '--ip', '127.8.0.1'], { env });
    expect(missing.code).toBe(2);
    expect(JSON.parse(missing.stdout).error.code).toBe('function_not_found');
    expect((await registry('undeploy', '--org', 'acme', '--fn', 'checkout')).code).toBe(0);
    expect(await registry('undeploy', '--org', 'acme', '--fn', 'checkout')).toMatchObject({ code: 2, stderr: expect.stringContaining('no function checkout') });
  });

  it('maps custom domains', async () => {
    expect((await registry('domain', 'add', 'Shop.Example.com', '--org', 'acme', '--fn', 'shop')).code).toBe(0);
    const explained = await cli(['explain', '--host', 'shop.example.com', '--ip', '127.8.0.1', '--unknown-functions', 'forward', '--json'], { env });
    expect(JSON.parse(explained.stdout)).toMatchObject({ fn: 'shop', org: 'acme' });
    expect((await registry('domain', 'remove', 'shop.example.com')).code).toBe(0);
  });

  it.each([
    [['drain', 'mars'], 'unknown region "mars"'],
    [['drain'], 'drain: expected a region id'],
    [['deploy', '--org', 'acme', '--fn', 'x', '--regions', 'atl,mars'], 'unknown region "mars"'],
    [['deploy', '--org', 'acme', '--fn', 'x'], 'deploy: expected --regions a,b'],
    [['deploy', '--org', 'ACME!', '--fn', 'x', '--regions', 'atl'], 'deploy: org:'],
    // Host names are lower-cased, so requests name org "acme": a rule stored for "Acme" held no
    // request to its regions, while the command said the org was restricted.
    [['residency', 'set', '--org', 'Acme', '--regions', 'fra'], 'residency: --org "Acme" is not an org id'],
    [['residency', 'set', '--org', ' acme', '--regions', 'fra'], 'residency: --org " acme" is not an org id'],
    [['deploy', '--org', 'acme', '--fn', 'x', '--regions', 'atl', '--tier', 'forever'], 'deploy: --tier is standard or extended'],
    [['deploy', '--org', 'o'.repeat(30), '--fn', 'f'.repeat(40), '--regions', 'atl'], 'deploy: --fn: expected at most 32 characters with org'],
    [['domain', 'add', 'not a host', '--org', 'a', '--fn', 'b'], 'domain: expected a DNS name'],
    // KELVIN SIGN lower-cases to an ASCII "k": a name nobody typed (as the admin API refuses it).
    [['domain', 'add', '\u212Ashop.example.com', '--org', 'a', '--fn', 'b'], 'domain: expected a DNS name'],
    [['events', '--limit', '0'], 'events: --limit: expected a whole number from 1 to 1000, got "0"'],
    // Read by Number(), these were 16 and 100 events.
    [['events', '--limit', '0x10'], 'events: --limit: expected a whole number from 1 to 1000, got "0x10"'],
    [['events', '--limit', '1e2'], 'events: --limit: expected a whole number from 1 to 1000, got "1e2"'],
    [['explode'], 'unknown action "explode"'],
    [['import'], 'import: expected a backup file'],
  ])('refuses %j with exit 2 and writes nothing', async (args, message) => {
    const before = await raw.keys(`${PREFIX}*`);
    const snapshot = await Promise.all(before.sort().map((k) => raw.dump(k)));
    const result = await registry(...args);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(message);
    const after = await raw.keys(`${PREFIX}*`);
    expect(after.sort()).toEqual(before.sort());
    expect(await Promise.all(after.sort().map((k) => raw.dump(k)))).toEqual(snapshot);
  });

  it('refuses a deploy into regions outside the org\'s residency, naming them and the allowed ones: exit 2, nothing written', async () => {
    expect((await registry('residency', 'set', '--org', 'euco', '--regions', 'fra')).code).toBe(0);
    const before = await raw.keys(`${PREFIX}*`);
    const snapshot = await Promise.all(before.sort().map((k) => raw.dump(k)));
    // Seen in review: both were stored (exit 0); routing never sent a request to nyc, and the
    // second function answered no_healthy_region to every request.
    for (const regions of ['fra,nyc', 'nyc,atl']) {
      const refused = await registry('deploy', '--org', 'euco', '--fn', 'api', '--regions', regions);
      const outside = regions === 'fra,nyc' ? 'nyc is' : 'nyc, atl are';
      expect(refused, regions).toMatchObject({ code: 2, stdout: '' });
      expect(refused.stderr, regions).toBe(`edge-router registry: euco/api: ${outside} outside org euco's data residency (allowed: fra); routing would never send a request there. Deploy within the allowed regions, or change the residency first\n`);
    }
    expect((await raw.keys(`${PREFIX}*`)).sort()).toEqual(before.sort());
    expect(await Promise.all(before.sort().map((k) => raw.dump(k)))).toEqual(snapshot);
    // Within the residency it is taken, and an org without a rule may deploy anywhere.
    expect(await registry('deploy', '--org', 'euco', '--fn', 'api', '--regions', 'fra')).toMatchObject({ code: 0, stdout: expect.stringContaining('deployed api (org euco) in fra') });
    expect((await registry('deploy', '--org', 'anyco', '--fn', 'api', '--regions', 'nyc,syd')).code).toBe(0);
    const events = JSON.parse((await registry('events', '--json', '--limit', '2')).stdout) as { kind: string; cause: string }[];
    expect(events.map((e) => [e.kind, e.cause])).toEqual([
      ['deployed', 'anyco/api in nyc,syd (standard; CLI)'],
      ['deployed', 'euco/api in fra (standard; CLI)'],
    ]);
    expect((await registry('residency', 'clear', '--org', 'euco')).code).toBe(0);
  });

  it('sets a residency that strands deployed functions or leaves them partly outside it (it applies at once), and names each of them', async () => {
    expect((await registry('deploy', '--org', 'strandco', '--fn', 'checkout', '--regions', 'lax,syd')).code).toBe(0);
    expect((await registry('deploy', '--org', 'strandco', '--fn', 'search', '--regions', 'nyc')).code).toBe(0);
    expect((await registry('deploy', '--org', 'strandco', '--fn', 'both', '--regions', 'fra,nyc')).code).toBe(0);
    const set = await registry('residency', 'set', '--org', 'strandco', '--regions', 'fra');
    expect(set).toMatchObject({ code: 0, stdout: 'org strandco restricted to fra\n' });
    expect(set.stderr).toBe(
      [
        'residency: 2 functions of org strandco are deployed in no region it now allows, and answer no_healthy_region until redeployed within fra:',
        '  checkout (deployed in lax, syd)',
        '  search (deployed in nyc)',
        'residency: 1 function of org strandco is deployed partly outside the rule (a deploy would refuse that), and is served from the regions it allows only:',
        '  both (deployed in fra, nyc) is served from fra only: nyc is outside the rule',
        '',
      ].join('\n'),
    );
    expect(JSON.parse(await raw.hget(`${PREFIX}residency`, 'strandco') ?? 'null')).toEqual(['fra']);
    // A rule that strands nothing and leaves nothing partly outside says nothing more.
    expect(await registry('residency', 'set', '--org', 'strandco', '--regions', 'fra,nyc,lax,syd')).toMatchObject({ code: 0, stderr: '' });
    expect((await registry('residency', 'clear', '--org', 'strandco')).code).toBe(0);
    // Each change is in the registry's event log.
    const events = JSON.parse((await registry('events', '--json', '--limit', '3')).stdout) as Array<{ region: string | null; kind: string; cause: string }>;
    expect(events.map(({ region, kind, cause }) => ({ region, kind, cause }))).toEqual([
      { region: null, kind: 'residency_cleared', cause: 'org strandco may use every region (CLI)' },
      { region: null, kind: 'residency_set', cause: 'org strandco restricted to fra, lax, nyc, syd (CLI)' },
      { region: null, kind: 'residency_set', cause: 'org strandco restricted to fra (CLI)' },
    ]);
    // Said for people too, the kind in a column as wide as the longest kind.
    expect((await registry('events', '--limit', '1')).stdout).toMatch(/^\S+ {2}- {4}residency_cleared org strandco may use every region \(CLI\)\n$/);
    for (const fn of ['checkout', 'search', 'both']) expect((await registry('undeploy', '--org', 'strandco', '--fn', fn)).code).toBe(0);
  });

  it('imports a backup whose residency strands a function, or leaves one partly outside it, as it is, and names them', async () => {
    const { file, backup } = await backupFile(
      'stranded.json',
      [
        { org: 'strandimp', fn: 'api', regions: ['nyc'] },
        // Deploy would refuse it (nyc is outside the rule); routing serves it from fra only.
        { org: 'strandimp', fn: 'both', regions: ['fra', 'nyc'] },
        { org: 'strandimp', fn: 'web', regions: ['fra'] },
      ],
      { strandimp: ['fra'] },
    );
    const imported = await inRegistry(strandedImport)('import', file);
    expect(imported.code).toBe(0);
    expect(imported.stderr).toBe(
      [
        'import: org strandimp may use only fra; its function api (deployed in nyc) will answer no_healthy_region until redeployed',
        'import: org strandimp may use only fra; its function both (deployed in fra, nyc) is served from fra only: nyc is outside the rule',
        '',
      ].join('\n'),
    );
    const reexported = JSON.parse((await inRegistry(strandedImport)('export')).stdout);
    expect(reexported).toMatchObject({ functions: backup.functions, residency: backup.residency });
  });

  it('exports a residency rule it cannot read as allowing no region, and an import keeps the org confined', async () => {
    await lockedExport.raw.hset(`${lockedExport.prefix}functions`, 'lockedco/api', JSON.stringify({ org: 'lockedco', fn: 'api', regions: ['fra'], tier: 'standard', enabled: true }));
    await lockedExport.raw.hset(`${lockedExport.prefix}residency`, 'lockedco', '{not json');
    const exported = await inRegistry(lockedExport)('export');
    expect(exported.code).toBe(0);
    // Dropped, the rule would have freed the org to every region after a restore.
    expect(JSON.parse(exported.stdout)).toMatchObject({ residency: { lockedco: [] } });
    const file = join(await mkdtemp(join(tmpdir(), 'edge-router-backup-')), 'locked.json');
    await writeFile(file, exported.stdout);
    const imported = await inRegistry(lockedImport)('import', file);
    expect(imported.code).toBe(0);
    // Said as no region, not as an empty list ("may use only ;").
    expect(imported.stderr).toContain('import: org lockedco may use no region (its rule could not be read: set it again); its function api (deployed in fra) will answer no_healthy_region until redeployed');
    expect(await lockedImport.raw.hget(`${lockedImport.prefix}residency`, 'lockedco')).toBe('[]');
  });

  it('imports its own export of a function deployed in a region its regions file lacks, and a rule naming one, as they are, and says so', async () => {
    // Written by a router whose regions file has `mars` (a new region being rolled out); this one's lacks it, and keeps them (RecordDecoder).
    await marsExport.raw.hset(`${marsExport.prefix}functions`, 'marsco/api', JSON.stringify({ org: 'marsco', fn: 'api', regions: ['fra', 'mars'], tier: 'standard', enabled: true }));
    await marsExport.raw.hset(`${marsExport.prefix}residency`, 'marsco', JSON.stringify(['fra', 'mars']));
    const exported = await inRegistry(marsExport)('export');
    expect(exported.code).toBe(0);
    expect(JSON.parse(exported.stdout)).toMatchObject({ functions: [{ org: 'marsco', fn: 'api', regions: ['fra', 'mars'] }], residency: { marsco: ['fra', 'mars'] } });
    const file = join(await mkdtemp(join(tmpdir(), 'edge-router-backup-')), 'mars.json');
    await writeFile(file, exported.stdout);
    // Refused, this router could not restore its own export.
    const imported = await inRegistry(marsImport)('import', file);
    expect(imported.code).toBe(0);
    expect(imported.stderr).toContain('import: the backup names mars, which this regions file lacks: written as it is; this router routes by the regions it knows');
    expect(JSON.parse(await marsImport.raw.hget(`${marsImport.prefix}functions`, 'marsco/api') ?? 'null')).toMatchObject({ regions: ['fra', 'mars'] });
    expect(JSON.parse(await marsImport.raw.hget(`${marsImport.prefix}residency`, 'marsco') ?? 'null')).toEqual(['fra', 'mars']);
  });

  it('keeps a residency rule as an export writes it (each region once, sorted): the registry\'s own export imports as nothing changed', async () => {
    // Stored as typed, the rule read differently from its export, and importing the export over
    // the same registry rewrote it, stamped a new generation and made every router reread the
    // whole directory (found by review).
    const run = inRegistry(roundTrip);
    // A registry with a generation (an import stamps one): only there can an import change nothing.
    const seed = await backupFile('round-trip-seed', [{ org: 'seedco', fn: 'api', regions: ['fra'] }], {});
    expect((await run('import', seed.file)).code).toBe(0);
    const file = join(await mkdtemp(join(tmpdir(), 'edge-router-backup-')), 'backup.json');
    expect(await run('residency', 'set', '--org', 'orderco', '--regions', 'nyc,fra,fra')).toMatchObject({ code: 0, stdout: expect.stringContaining('org orderco restricted to fra, nyc\n') });
    expect(JSON.parse(await roundTrip.raw.hget(`${roundTrip.prefix}residency`, 'orderco') ?? 'null')).toEqual(['fra', 'nyc']);
    expect((await run('export', '--out', file)).code).toBe(0);
    expect(await run('import', file, '--overwrite')).toMatchObject({ code: 0, stdout: expect.stringMatching(/^imported nothing: every entry of the backup's /) });
  });

  it('checks an imported backup against the residency rules that hold after it: the registry\'s own, kept without --overwrite, and named', async () => {
    const into = inRegistry(ruledImport);
    expect((await into('residency', 'set', '--org', 'keepco', '--regions', 'fra')).code).toBe(0);
    expect((await into('residency', 'set', '--org', 'ruleco', '--regions', 'fra')).code).toBe(0);
    const { file, backup } = await backupFile(
      'ruled.json',
      [
        { org: 'keepco', fn: 'api', regions: ['nyc'] },
        { org: 'keepco', fn: 'web', regions: ['fra'] },
        // No rule for ruleco in the backup: the registry's holds.
        { org: 'ruleco', fn: 'api', regions: ['lax'] },
      ],
      { keepco: ['nyc'] },
    );
    const kept = await into('import', file);
    expect(kept.code).toBe(0);
    expect(kept.stderr).toBe(
      [
        "import: org keepco keeps its residency rule fra, not the backup's nyc: an import without --overwrite keeps the registry's entries",
        'import: org keepco may use only fra; its function api (deployed in nyc) will answer no_healthy_region until redeployed',
        'import: org ruleco may use only fra; its function api (deployed in lax) will answer no_healthy_region until redeployed',
        '',
      ].join('\n'),
    );
    expect(JSON.parse((await into('export')).stdout)).toMatchObject({ functions: backup.functions, residency: { keepco: ['fra'], ruleco: ['fra'] } });
    // --overwrite replaces the rule with the backup's, which strands web instead.
    const overwritten = await into('import', file, '--overwrite');
    expect(overwritten).toMatchObject({ code: 0, stderr: 'import: org keepco may use only nyc; its function web (deployed in fra) will answer no_healthy_region until redeployed\nimport: org ruleco may use only fra; its function api (deployed in lax) will answer no_healthy_region until redeployed\n' });
    expect(JSON.parse((await into('export')).stdout).residency).toEqual({ keepco: ['nyc'], ruleco: ['fra'] });
  });

  it('exports a backup and imports it into another registry: entries missing there, or all with --overwrite', async () => {
    const from = inRegistry(source);
    expect((await from('deploy', '--org', 'acme', '--fn', 'checkout', '--regions', 'syd,lax', '--tier', 'extended')).code).toBe(0);
    expect((await from('domain', 'add', 'pay.example.com', '--org', 'acme', '--fn', 'checkout')).code).toBe(0);
    expect((await from('residency', 'set', '--org', 'euonly', '--regions', 'fra')).code).toBe(0);
    expect((await from('weight', 'fra', '3')).code).toBe(0);
    const dir = await mkdtemp(join(tmpdir(), 'edge-router-backup-'));
    const file = join(dir, 'backup.json');
    const exported = await from('export', '--out', file);
    expect(exported).toMatchObject({ code: 0, stderr: expect.stringMatching(/^exported 1 functions, 1 domains, 1 residency rules, 1 region overrides to /) });
    const backup = JSON.parse(await readFile(file, 'utf8'));
    expect(backup).toMatchObject({
      format: 'edge-router-registry-backup',
      version: 1,
      functions: [{ org: 'acme', fn: 'checkout', regions: ['lax', 'syd'], tier: 'extended', enabled: true }],
      domains: { 'pay.example.com': { org: 'acme', fn: 'checkout' } },
      residency: { euonly: ['fra'] },
      overrides: { fra: { drained: false, weight: 3 } },
    });
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const { exportedAt: _a, ...fromFile } = backup;
    const { exportedAt: _b, ...fromStdout } = JSON.parse((await from('export')).stdout);
    expect(fromStdout).toEqual(fromFile);

    // Into another registry, where fra already has a weight.
    const into = inRegistry(target);
    expect((await into('weight', 'fra', '9')).code).toBe(0);
    const imported = await into('import', file);
    expect(imported).toMatchObject({ code: 0, stdout: expect.stringContaining('imported 1 functions, 1 domains, 1 residency rules, 1 region overrides (keeping existing entries)') });
    const reexported = JSON.parse((await into('export')).stdout);
    expect(reexported).toMatchObject({ functions: backup.functions, domains: backup.domains, residency: backup.residency, overrides: { fra: { weight: 9 } } });
    expect(reexported.generation).toEqual(expect.any(String));
    expect(reexported.generation).not.toBe(backup.generation);
    // Each entry it wrote logged as the CLI logs that change, by the import; fra's weight, kept, not.
    const logged = async (limit: string) => (JSON.parse((await into('events', '--json', '--limit', limit)).stdout) as { kind: string; cause: string }[]).map((e) => `${e.kind} ${e.cause}`);
    expect(await logged('4')).toEqual([
      'residency_set org euonly restricted to fra (CLI import)',
      'domain pay.example.com → acme/checkout (CLI import)',
      'deployed acme/checkout in lax,syd (extended; CLI import)',
      'weight operator (CLI) set weight 9',
    ]);
    expect((await into('import', file, '--overwrite')).code).toBe(0);
    expect(JSON.parse((await into('export')).stdout).overrides).toEqual({ fra: { drained: false, weight: 3 } });
    expect((await logged('2'))[0]).toBe('weight operator (CLI import) set weight 3');
    // Imported again without --overwrite, into a registry an import has stamped: what is missing is
    // written (before, nothing was, and it still said "imported").
    expect((await into('undeploy', '--org', 'acme', '--fn', 'checkout')).code).toBe(0);
    expect((await into('import', file)).code).toBe(0);
    expect(JSON.parse((await into('export')).stdout).functions).toEqual(backup.functions);
    // Imported once more, with or without --overwrite: every entry stands, so nothing is stamped
    // (before, a new generation sent every router to read the whole directory again for nothing).
    const standing = await target.raw.get(`${target.prefix}generation`);
    const revisions = await target.raw.hgetall(`${target.prefix}revisions`);
    expect(standing).toMatch(/^import:/);
    const whole = '1 functions, 1 domains, 1 residency rules, 1 region overrides';
    expect(await into('import', file, '--overwrite')).toMatchObject({ code: 0, stdout: `imported nothing: every entry of the backup's ${whole} already stands as it is; generation ${standing} stays\n` });
    // Without --overwrite an entry is kept whatever its value: said so, not "already stands" (fra's weight differs here).
    expect((await into('weight', 'fra', '7')).code).toBe(0);
    const revisionsBefore = await target.raw.hgetall(`${target.prefix}revisions`);
    expect(await into('import', file)).toMatchObject({ code: 0, stdout: `imported nothing: the registry already has an entry for each of the backup's ${whole}, kept as it stands (--overwrite replaces them); generation ${standing} stays\n` });
    expect(await target.raw.hgetall(`${target.prefix}revisions`)).toEqual(revisionsBefore);
    expect(await target.raw.get(`${target.prefix}generation`)).toBe(standing);
    expect(revisionsBefore).toEqual(revisions);
    expect((await logged('1'))[0]).toBe('weight operator (CLI) set weight 7');
  });

  it.each(UNREADABLE_KEYS)('refuses to export a registry whose %s key cannot be read: exit 2, the key and why named, no file and nothing on stdout', async (name) => {
    const space = brokenKey[name]!;
    const run = inRegistry(space);
    expect((await run('deploy', '--org', 'acme', '--fn', 'api', '--regions', 'fra')).code).toBe(0);
    expect((await run('residency', 'set', '--org', 'acme', '--regions', 'fra')).code).toBe(0);
    expect((await run('domain', 'add', 'api.example.com', '--org', 'acme', '--fn', 'api')).code).toBe(0);
    expect((await run('drain', 'syd')).code).toBe(0);
    await space.raw.set(`${space.prefix}generation`, 'import:x');
    // Replaced in one step by a key of another type (as by hand: SET edge:residency x; for the generation, a string, a hash).
    const key = `${space.prefix}${name}`;
    await (name === 'generation' ? space.raw.multi().del(key).hset(key, 'by', 'hand') : space.raw.multi().del(key).set(key, 'not a hash')).exec();
    const dir = await mkdtemp(join(tmpdir(), 'edge-router-backup-'));
    const toFile = await run('export', '--out', join(dir, 'backup.json'));
    expect(toFile.code).toBe(2);
    // Before: exit 0 and a backup without that part (for residency: one that restores every org to every region).
    expect(toFile.stderr).toMatch(new RegExp(`^export: the registry's ${name} key ${space.prefix}${name} cannot be read \\(WRONGTYPE[^)]*\\)`, 'm'));
    expect(toFile.stderr).toContain('nothing written');
    // Said once, by the command, not again as a router says it ("kept as last read").
    expect(toFile.stderr).not.toContain('ignored bad entry');
    await expect(stat(join(dir, 'backup.json'))).rejects.toThrow();
    const toStdout = await run('export');
    expect(toStdout).toMatchObject({ code: 2, stdout: '' });
    expect(toStdout.stderr).toContain(`${space.prefix}${name} cannot be read`);
  });

  it('refuses to import into a registry whose hashes hold another Redis type: exit 2, each key and its type named, nothing written', async () => {
    const space = mistypedImport;
    const run = inRegistry(space);
    expect((await run('deploy', '--org', 'acme', '--fn', 'api', '--regions', 'fra')).code).toBe(0);
    await space.raw.set(`${space.prefix}overrides`, 'not a hash');
    await space.raw.rpush(`${space.prefix}residency`, 'a list');
    const before = await space.raw.hgetall(`${space.prefix}revisions`);
    const { file } = await backupFile('backup.json', [{ org: 'acme', fn: 'web', regions: ['fra'] }], { acme: ['fra'] });
    const backup = JSON.parse(await readFile(file, 'utf8'));
    await writeFile(file, JSON.stringify({ ...backup, overrides: { fra: { drained: true, weight: null } } }));
    const result = await run('import', file, '--overwrite');
    expect(result).toMatchObject({ code: 2, stdout: '' });
    // Before: the functions before the bad key written, the revisions moved, the rest not, and Redis's WRONGTYPE alone.
    expect(result.stderr.split('\n').filter(Boolean)).toEqual([
      `import: the registry's residency key ${space.prefix}residency holds a list, not a hash: the backup's residency rules cannot be written into it`,
      `import: the registry's overrides key ${space.prefix}overrides holds a string, not a hash: the backup's drains and weights cannot be written into it`,
      'import: nothing written; import again once the keys are mended (redis-cli TYPE <key> shows what a key holds)',
    ]);
    expect(await space.raw.hexists(`${space.prefix}functions`, 'acme/web')).toBe(0);
    expect(await space.raw.hgetall(`${space.prefix}revisions`)).toEqual(before);
    expect(await space.raw.exists(`${space.prefix}generation`)).toBe(0);
  });

  it('succeeds, saying why, when the change is written but the event log cannot take its entry', async () => {
    // It exited 2 "Redis refused the command" with the change made: a retry of undeploy then
    // found nothing to undeploy. The reason was "internal error" where a warning gave one at all.
    const space = lockedEvents;
    const run = inRegistry(space);
    expect((await run('deploy', '--org', 'acme', '--fn', 'api', '--regions', 'fra')).code).toBe(0);
    await space.raw.del(`${space.prefix}events`);
    await space.raw.set(`${space.prefix}events`, 'not a list');
    const logFull = (command: string) => `${command}: the change is written, but the registry's event log could not take its entry: Redis refused the command: WRONGTYPE`;
    for (const [args, command] of [
      [['drain', 'fra'], 'drain'],
      [['weight', 'fra', '20'], 'weight'],
      [['deploy', '--org', 'acme', '--fn', 'web', '--regions', 'fra'], 'deploy'],
      [['domain', 'add', 'shop.example.com', '--org', 'acme', '--fn', 'web'], 'domain add'],
      [['domain', 'remove', 'shop.example.com'], 'domain remove'],
      [['undeploy', '--org', 'acme', '--fn', 'api'], 'undeploy'],
      [['residency', 'set', '--org', 'acme', '--regions', 'fra'], 'residency'],
    ] as const) {
      const result = await run(...args);
      expect(result.code, args.join(' ')).toBe(0);
      expect(result.stderr, args.join(' ')).toContain(command === 'residency' ? "residency: the rule is written, but the registry's event log could not take its entry: Redis refused the command: WRONGTYPE" : logFull(command));
    }
    expect(JSON.parse((await space.raw.hget(`${space.prefix}overrides`, 'fra'))!)).toEqual({ drained: true, weight: 20 });
    expect(await space.raw.hexists(`${space.prefix}functions`, 'acme/api')).toBe(0);
    expect(await space.raw.hexists(`${space.prefix}functions`, 'acme/web')).toBe(1);
  });

  it('says who undeployed a function or removed a domain in the event log', async () => {
    expect((await registry('deploy', '--org', 'acme', '--fn', 'gone', '--regions', 'fra')).code).toBe(0);
    expect((await registry('domain', 'add', 'gone.example.com', '--org', 'acme', '--fn', 'gone')).code).toBe(0);
    expect((await registry('domain', 'remove', 'gone.example.com')).code).toBe(0);
    expect((await registry('undeploy', '--org', 'acme', '--fn', 'gone')).code).toBe(0);
    const causes = (await raw.lrange(`${PREFIX}events`, 0, -1)).map((line) => (JSON.parse(line) as { cause: string }).cause);
    expect(causes).toEqual(expect.arrayContaining(['gone.example.com → acme/gone (CLI)', 'gone.example.com removed (CLI)', 'acme/gone (CLI)']));
  });

  it('refuses to import into a registry of a newer schema version: exit 2, nothing written', async () => {
    const space = newerSchema;
    await space.raw.set(`${space.prefix}schema`, '2');
    const { file } = await backupFile('backup.json', [{ org: 'acme', fn: 'web', regions: ['fra'] }], {});
    const result = await inRegistry(space)('import', file);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/schema version "2" but this router understands 1/);
    expect(await space.raw.exists(`${space.prefix}functions`)).toBe(0);
    expect(await space.raw.exists(`${space.prefix}generation`)).toBe(0);
  });

  it('status shows drains and weights as unknown, and says why, when the overrides key cannot be read', async () => {
    const space = brokenKey.overrides!;
    const run = inRegistry(space);
    await space.raw.multi().del(`${space.prefix}overrides`).set(`${space.prefix}overrides`, 'not a hash').exec();
    const text = await run('status');
    expect(text.code).toBe(0);
    // Before: every region "no" drained at its configured weight, whatever the registry holds.
    expect(text.stdout.split('\n').find((line) => line.startsWith('syd '))).toMatch(/ \? +\? +- *$/);
    expect(text.stderr).toContain(`status: the registry's overrides key ${space.prefix}overrides cannot be read (WRONGTYPE`);
    const json = JSON.parse((await run('status', '--json')).stdout) as { regions: { id: string; drained: unknown; weight: unknown }[]; unreadable: Record<string, string> };
    expect(json.regions.find((r) => r.id === 'syd')).toMatchObject({ drained: null, weight: null });
    expect(json.unreadable).toEqual({ overrides: expect.stringMatching(/^WRONGTYPE/) });
  });

  it('refuses to export an empty registry no router has stamped (a Redis that lost its data?): exit 2, nothing written', async () => {
    const empty = inRegistry(redisKeyspaceEmpty);
    const dir = await mkdtemp(join(tmpdir(), 'edge-router-backup-'));
    const result = await empty('export', '--out', join(dir, 'backup.json'));
    expect(result).toMatchObject({ code: 2, stderr: expect.stringContaining('the registry is empty and has no generation') });
    await expect(stat(join(dir, 'backup.json'))).rejects.toThrow();
  });

  it('refuses a backup with an override of an unknown region or a malformed field: exit 2, the file and the field named, nothing written', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'edge-router-backup-'));
    const base = { format: 'edge-router-registry-backup', version: 1, exportedAt: 'x', generation: null, functions: [], residency: {}, domains: {}, overrides: {} };
    const cases: Array<[unknown, string]> = [
      [{ ...base, overrides: { mars: { drained: true, weight: null } } }, 'overrides.mars: unknown region "mars"'],
      [{ ...base, domains: { 'x.example.com': { org: 'ACME', fn: 'a' } } }, 'domains.x.example.com.org'],
      [{ ...base, format: 'something-else' }, 'format'],
      ['{ not json', 'not valid JSON at line 1, column 3: expected a field name in double quotes, found "n"'],
    ];
    const before = await raw.keys(`${PREFIX}*`);
    for (const [i, [content, message]] of cases.entries()) {
      const file = join(dir, `bad-${i}.json`);
      await writeFile(file, typeof content === 'string' ? content : JSON.stringify(content));
      const result = await registry('import', file);
      expect(result.code, message).toBe(2);
      expect(result.stderr).toContain(`${file}: ${message}`);
    }
    expect((await raw.keys(`${PREFIX}*`)).sort()).toEqual(before.sort());
  });

  it('says how to give a registry when none is configured', async () => {
    const result = await cli(['registry', 'status']);
    expect(result).toMatchObject({ code: 2, stderr: expect.stringContaining('no registry given: pass --redis <url> or set REDIS_URL') });
  });

  it('says Redis refused the login, for a wrong password or none, naming where the URL came from', async () => {
    const server = await TestRedisServer.start(['--requirepass', 'right-password']);
    try {
      const wrong = await cli(['registry', 'status', '--redis', `redis://:hunter2@127.0.0.1:${server.port}`]);
      expect(wrong).toMatchObject({ code: 2, stdout: '' });
      expect(wrong.stderr).toBe(
        `edge-router registry: Redis at redis://:***@127.0.0.1:${server.port} refused the login (WRONGPASS invalid username-password pair or user is disabled.): check the password in --redis\n`,
      );
      const none = await cli(['registry', 'status'], { env: { REDIS_URL: server.url } });
      expect(none).toMatchObject({ code: 2, stderr: expect.stringContaining(`Redis at ${server.url} refused the login (NOAUTH`) });
      expect(none.stderr).toContain('check the password in REDIS_URL');
    } finally {
      await server.stop();
    }
  });

  it('writes an export to a file it cannot create as one line naming the file, exit 2', async () => {
    expect((await registry('weight', 'atl', '2')).code).toBe(0);
    const result = await registry('export', '--out', '/nonexistent/dir/x.json');
    expect(result).toEqual({ code: 2, stdout: '', stderr: 'edge-router registry: /nonexistent/dir/x.json: cannot write (ENOENT)\n' });
  });

  it('fails fast with exit 2 when Redis cannot be reached, without printing the password', async () => {
    const port = await freePort();
    const result = await cli(['registry', 'status', '--redis', `redis://:hunter2@127.0.0.1:${port}`]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`cannot reach Redis at redis://:***@127.0.0.1:${port}`);
    expect(result.stderr).not.toContain('hunter2');
  });
});

describe('edge-router registry, given a Redis URL it cannot use', () => {
  it.each([
    ['a port out of range', 'redis://:hunter2@127.0.0.1:99999', 'redis://:***@127.0.0.1:99999'],
    // Before: taken, then reported as a registry that cannot be reached.
    ['port 0', 'redis://:hunter2@127.0.0.1:0', 'redis://:***@127.0.0.1:0'],
    ['a stray % in the password', 'redis://:hun%zz2@127.0.0.1:6379', 'redis://:***@127.0.0.1:6379'],
    ['another scheme', 'http://127.0.0.1:6379', 'http://127.0.0.1:6379'],
    ['a db that is not a number', 'redis://127.0.0.1:6379/zero', 'redis://127.0.0.1:6379/zero'],
  ])('refuses %s in one line naming the flag or variable, without the password, exit 2', async (_what, url, shown) => {
    const expected = `expected redis://[:password@]host:port[/db] or rediss://…, got ${shown}`;
    const fromEnv = await cli(['registry', 'status'], { env: { REDIS_URL: url } });
    expect(fromEnv.code).toBe(2);
    expect(fromEnv.stderr.split('\n')[0]).toBe(`edge-router registry: REDIS_URL: ${expected}`);
    const fromFlag = await cli(['validate', '--dev-cert', '--redis', url]);
    expect(fromFlag).toEqual({ code: 2, stdout: '', stderr: `edge-router validate: --redis: ${expected}\n` });
    for (const { stderr } of [fromEnv, fromFlag]) {
      expect(stderr).not.toContain('hun');
      expect(stderr).not.toMatch(/^\s+at /m);
    }
  });
});

describe('edge-router registry, given Sentinels it cannot use', () => {
  it.each(['10.0.0.1:0', '10.0.0.1:65536', '10.0.0.1'])('refuses %s in one line naming the variable, exit 2', async (entry) => {
    const result = await cli(['validate', '--dev-cert'], { env: { EDGE_REDIS_SENTINELS: entry } });
    expect(result).toEqual({ code: 2, stdout: '', stderr: `edge-router validate: EDGE_REDIS_SENTINELS: expected host:port,host:port, got ${JSON.stringify(entry)}\n` });
  });
});

describe('edge-router registry --help and probe --help', () => {
  it.each(['registry', 'probe'])('%s --help says a Redis is required, not that the default is a memory registry it cannot use', async (command) => {
    // Before: "--redis <url> … [default: none (the in-process memory registry)]", and every action
    // without one answered "no registry given" (both take their flags from open-registry.ts).
    const { code, stdout } = await cli([command, '--help']);
    expect(code).toBe(0);
    const line = stdout.split('\n').find((l) => l.trimStart().startsWith('--redis <url>'));
    expect(line).toContain('default: none: required (this or --redis-sentinels)');
    expect(stdout).not.toContain('in-process memory registry');
  });
});
