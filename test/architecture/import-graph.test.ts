/**
 * The architecture as the README's folder table states it, checked against the code: each
 * folder imports only the folders its row allows, and no module imports itself round a cycle.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = 'src';

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    return entry.isDirectory() ? sourceFiles(path) : entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** Relative imports of a file (static, type-only and dynamic), as paths of .ts files under src/. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specifiers = [...text.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)'(\.{1,2}\/[^']+)'/g)].map((m) => m[1]!);
  return specifiers.map((s) => normalize(join(dirname(file), s)).replace(/\.js$/, '.ts'));
}

/** `src/registry/prober.ts` → `registry`; a file at the top of src/ is its own unit. */
function folderOf(file: string): string {
  const parts = relative(SRC, file).split('/');
  return parts.length === 1 ? parts[0]! : parts[0]!;
}

/** The README's table: folder → folders it may import, or 'everything'. */
function allowedByReadme(): Map<string, Set<string> | 'everything'> {
  const readme = readFileSync('README.md', 'utf8');
  const table = readme.slice(readme.indexOf('| folder | job | may import |'));
  const rows = table.split('\n').slice(2).filter((line) => line.startsWith('|'));
  const allowed = new Map<string, Set<string> | 'everything'>();
  for (const row of rows) {
    const cells = row.split(/(?<!\\)\|/).map((c) => c.trim());
    const units = [...cells[1]!.matchAll(/`src\/([^`/]+)\/?`/g)].map((m) => m[1]!);
    const rule = cells[3]!;
    const value = rule.startsWith('everything') ? 'everything' : new Set(rule === 'nothing' ? [] : rule.split(',').map((p) => p.trim().split(/\s/)[0]!));
    for (const unit of units) allowed.set(unit, value);
  }
  return allowed;
}

const files = sourceFiles(SRC);
const graph = new Map(files.map((f) => [f, importsOf(f)]));

describe('import graph', () => {
  it('has a README row for every folder of src/', () => {
    const allowed = allowedByReadme();
    const units = new Set(files.map(folderOf));
    expect([...units].filter((u) => !allowed.has(u))).toEqual([]);
  });

  it('each folder imports only what the README table allows', () => {
    const allowed = allowedByReadme();
    const violations: string[] = [];
    for (const [file, imports] of graph) {
      const from = folderOf(file);
      const rule = allowed.get(from);
      if (rule === 'everything') continue;
      for (const target of imports) {
        const to = folderOf(target);
        if (to !== from && !rule?.has(to)) violations.push(`${file} imports ${target} (${from} may import ${[...(rule ?? [])].join(', ') || 'nothing'})`);
      }
    }
    expect(violations).toEqual([]);
  });

  it('every relative import names a file that exists', () => {
    const missing = [...graph].flatMap(([file, imports]) => imports.filter((t) => !graph.has(t)).map((t) => `${file} → ${t}`));
    expect(missing).toEqual([]);
  });

  it('has no cycle', () => {
    const cycles: string[] = [];
    const state = new Map<string, 'visiting' | 'done'>();
    const visit = (file: string, path: string[]) => {
      if (state.get(file) === 'done') return;
      if (state.get(file) === 'visiting') {
        cycles.push([...path.slice(path.indexOf(file)), file].join(' → '));
        return;
      }
      state.set(file, 'visiting');
      for (const next of graph.get(file) ?? []) visit(next, [...path, file]);
      state.set(file, 'done');
    };
    for (const file of files) visit(file, []);
    expect(cycles).toEqual([]);
  });
});

/**
 * What a file loads with it: its static imports and re-exports, of files under src/ (as .ts paths)
 * and of packages (by name; node: built-ins left out). Not `import type` (tsc erases it) nor
 * `import()` (made when the code that holds it runs). An `import { type A }` counts: under
 * verbatimModuleSyntax it stays as an import of the module.
 */
function loadTimeImportsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specifiers = [...text.matchAll(/^(?:import|export)\s+(?!type\s)(?:[^'";]*?\sfrom\s+)?'([^']+)'/gm)].map((m) => m[1]!);
  return specifiers
    .filter((s) => !s.startsWith('node:'))
    .map((s) => (s.startsWith('.') ? normalize(join(dirname(file), s)).replace(/\.js$/, '.ts') : s.split('/').slice(0, s.startsWith('@') ? 2 : 1).join('/')));
}

/** The src/ files (as .ts paths) and the packages loaded with `entry`, following its load-time imports through src/. */
function loadedWith(entry: string): { files: Set<string>; packages: Set<string> } {
  const packages = new Set<string>();
  const files = new Set<string>();
  const visit = (file: string) => {
    if (files.has(file)) return;
    files.add(file);
    for (const target of loadTimeImportsOf(file)) {
      if (target.startsWith(SRC + '/')) visit(target);
      else packages.add(target);
    }
  };
  visit(entry);
  return { files, packages };
}

describe('what a router loads at its start', () => {
  // A router is the process started most (every cluster worker, most of the ~200 processes the
  // tests start): main.ts, then the router command. A package in that static graph costs each one.
  const atStart = new Set([...loadedWith('src/main.ts').packages, ...loadedWith('src/cli/router-command.ts').packages]);

  it('follows the static graph into the packages (the check below sees what it should)', () => {
    expect(atStart).toContain('pino');
    expect(atStart).toContain('zod');
  });

  it.each([
    ['acme-client', 'only a router with --acme-directory orders certificates (about 0.35 CPU-s to load)'],
    ['csso', 'only the dashboard page is minified with it, when it is first served (about 0.2 CPU-s to load)'],
    ['ws', 'only an orchestrator speaks WebSocket, from its start (about 0.14 CPU-s to load)'],
  ])('does not load %s: %s', (name) => {
    expect(atStart).not.toContain(name);
  });
});

describe('what the CLI loads before it knows the command', () => {
  // run-cli.ts holds every command's help but loads a command's implementation only to run it:
  // `--help`, `schema` or `registry status` must not pay for the router, the orchestrator or the
  // simulation (loading all of them took about 1 CPU-s per process).
  const { files, packages } = loadedWith('src/cli/run-cli.ts');

  it('follows the static graph into the helps (the checks below see what they should)', () => {
    expect(files).toContain('src/cli/flags.ts');
    expect([...files].filter((f) => f.startsWith('src/cli/help/')).length).toBeGreaterThan(10);
  });

  it('loads no command implementation', () => {
    const implementation = /-command\.ts$|^src\/cli\/explain\.ts$|^src\/edge-router\.ts$|^src\/(orchestrator|proxy|cluster|dashboard|acme|geoip|ingress\/certificates)\/|^src\/sim\/scenarios\.ts$|^src\/registry\/(redis-registry|prober)\.ts$/;
    expect([...files].filter((f) => implementation.test(f)).sort()).toEqual([]);
  });

  it('loads no package, and neither does main.ts (its last log lines go through process-log.ts, not pino)', () => {
    expect([...packages].sort()).toEqual([]);
    expect([...loadedWith('src/main.ts').packages].sort()).toEqual([]);
  });
});
