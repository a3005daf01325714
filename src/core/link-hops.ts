/**
 * Where a file's symlinks lead: each directory its chain of links passes through, with the entry
 * names read there. A file that is a symlink to a file elsewhere (certbot's `live/<name>/*.pem`,
 * themselves links into `archive/<name>/`) is replaced there, where no watch on the file's own
 * directory looks (replacement-watch.ts): these are the directories to watch as well. Reads links
 * only (lstat, readlink, realpath of their directories), never the files.
 */
import { lstat, readlink, realpath } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';

/** Links followed from one file at most, as the kernel's own limit (ELOOP after 40). */
const MAX_HOPS = 40;

/**
 * Per directory that a link of `files` points into, the entry names pointed at there. A file that
 * is no symlink adds nothing; a link that cannot be read (dangling, a loop, no permission) ends its
 * chain where it stands.
 */
export async function linkHops(files: readonly string[]): Promise<Map<string, Set<string>>> {
  const hops = new Map<string, Set<string>>();
  await Promise.all(
    files.map(async (file) => {
      let path = file;
      for (let hop = 0; hop < MAX_HOPS; hop++) {
        let target: string;
        try {
          if (!(await lstat(path)).isSymbolicLink()) return;
          // A relative target's `..` is taken from where the link physically is, as the kernel takes it.
          target = resolve(await realpath(dirname(path)), await readlink(path));
        } catch {
          return;
        }
        const dir = dirname(target);
        const names = hops.get(dir) ?? new Set<string>();
        names.add(basename(target));
        hops.set(dir, names);
        path = target;
      }
    }),
  );
  return hops;
}
