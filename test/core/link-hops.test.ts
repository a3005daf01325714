import { mkdir, mkdtemp, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { linkHops } from '../../src/core/link-hops.js';

describe('linkHops', () => {
  it('names each directory a chain of links passes through, with the names pointed at there', async () => {
    const root = await mkdtemp(join(tmpdir(), 'edge-router-links-'));
    await mkdir(join(root, 'own'));
    await mkdir(join(root, 'live', 'shop'), { recursive: true });
    await mkdir(join(root, 'archive', 'shop'), { recursive: true });
    await writeFile(join(root, 'archive', 'shop', 'fullchain1.pem'), 'x');
    await writeFile(join(root, 'own', 'plain.crt'), 'x');
    // certbot's: an absolute link to live/, a relative one from there to archive/.
    await symlink('../../archive/shop/fullchain1.pem', join(root, 'live', 'shop', 'fullchain.pem'));
    await symlink(join(root, 'live', 'shop', 'fullchain.pem'), join(root, 'own', 'shop.crt'));
    await symlink('gone.pem', join(root, 'own', 'dangling.crt'));
    await symlink('loop-b.crt', join(root, 'own', 'loop-a.crt'));
    await symlink('loop-a.crt', join(root, 'own', 'loop-b.crt'));

    expect(await linkHops([join(root, 'own', 'plain.crt')])).toEqual(new Map());
    expect(await linkHops([join(root, 'own', 'shop.crt')])).toEqual(
      new Map([
        [join(root, 'live', 'shop'), new Set(['fullchain.pem'])],
        [join(root, 'archive', 'shop'), new Set(['fullchain1.pem'])],
      ]),
    );
    // A dangling link still names where its file would be; a loop ends (the kernel's limit).
    expect(await linkHops([join(root, 'own', 'dangling.crt')])).toEqual(new Map([[join(root, 'own'), new Set(['gone.pem'])]]));
    expect(await linkHops([join(root, 'own', 'loop-a.crt')])).toEqual(new Map([[join(root, 'own'), new Set(['loop-a.crt', 'loop-b.crt'])]]));
  });
});
