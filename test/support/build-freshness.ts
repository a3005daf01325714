/**
 * Whether dist/ still holds what `tsc -p tsconfig.build.json` would write, so that the global
 * setup can skip a compile `npm run typecheck` has just done (it emits the same files, from the
 * same compiler options, as part of its check). Under isolatedModules a file's JavaScript depends
 * on that file alone, so an output no older than its source (and than the compiler options) is
 * current. Reads file times only; it never compiles.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** The directories tsconfig.build.json compiles, and the files whose options shape every output. */
export const BUILD_SOURCE_DIRS = ['src', 'bench'] as const;
export const BUILD_CONFIG_FILES = ['tsconfig.json', 'tsconfig.build.json', 'package.json'] as const;

/** What tsc writes for a source file (relative path, `/`-separated), or undefined when it writes nothing. */
export function outputOf(source: string): string | undefined {
  if (source.endsWith('.d.ts') || !source.endsWith('.ts')) return undefined;
  return `dist/${source.slice(0, -'.ts'.length)}.js`;
}

/**
 * The first reason dist/ is stale, or undefined when it is current. `mtimeOf` gives a file's
 * modification time in ms, or undefined when the file is missing.
 */
export function staleReason(sources: readonly string[], configs: readonly string[], mtimeOf: (path: string) => number | undefined): string | undefined {
  const newestConfig = Math.max(...configs.map((c) => mtimeOf(c) ?? 0));
  let compiled = 0;
  for (const source of sources) {
    const output = outputOf(source);
    if (output === undefined) continue;
    const outputMs = mtimeOf(output);
    if (outputMs === undefined) return `${output} is missing`;
    if (outputMs < (mtimeOf(source) ?? Infinity)) return `${source} changed after ${output} was written`;
    if (outputMs < newestConfig) return `compiler options changed after ${output} was written`;
    compiled += 1;
  }
  return compiled === 0 ? 'no source to compile was found' : undefined;
}

/** Every file under `dir` (relative, `/`-separated), recursively; none when it does not exist. */
function filesUnder(root: string, dir: string): string[] {
  let entries;
  try {
    entries = readdirSync(join(root, dir), { withFileTypes: true });
  } catch {
    return [];
  }
  return entries.flatMap((e) => (e.isDirectory() ? filesUnder(root, `${dir}/${e.name}`) : e.isFile() ? [`${dir}/${e.name}`] : []));
}

/** staleReason for the checkout at `root`. */
export function buildStaleReason(root: string): string | undefined {
  const sources = BUILD_SOURCE_DIRS.flatMap((dir) => filesUnder(root, dir));
  const mtimeOf = (path: string) => {
    try {
      return statSync(join(root, path)).mtimeMs;
    } catch {
      return undefined;
    }
  };
  return staleReason(sources, BUILD_CONFIG_FILES, mtimeOf);
}
