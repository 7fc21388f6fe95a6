// A full disk leaves nothing: not when it fills in the middle of a part (the part being written is removed too, so
// the disk does not stay full), not when it fills at the manifest (the finished parts never get their names).
// Needs root (a small tmpfs is mounted for each case).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { writeImage } from '../helpers/images.js';
import { key, SKIP_SLOW, skipNotice } from '../helpers/paths.js';
import { runCli } from '../helpers/run.js';
import { scratch } from '../helpers/bundles.js';
import { names } from '../helpers/interrupt.js';

const MiB = 1024 * 1024;
const PAGE = 4096;
const isRoot = process.getuid?.() === 0;
skipNotice(!SKIP_SLOW && !isRoot, 'disk-full: mounting a tmpfs needs root');

describe.skipIf(SKIP_SLOW || !isRoot)('ec2-bundle-image on a full disk', () => {
  const work = scratch('disk-full');
  const mounts: string[] = [];
  let image: string;
  let partBytes: number; // what the parts take on a tmpfs, in whole pages

  const args = (out: string) => ['-i', image, '-c', key('user-cert.pem'), '-k', key('user-key.pem'), '-u', '123456789012',
    '-r', 'x86_64', '--ec2cert', key('ec2-cert.pem'), '-d', out, '--batch'];

  function tmpfs(tag: string, bytes: number): string {
    const dir = join(work.dir, tag);
    mkdirSync(dir);
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes},mode=0755`, 'tmpfs', dir]);
    mounts.push(dir);
    return dir;
  }

  beforeAll(async () => {
    image = join(work.dir, 'full.img');
    await writeImage(image, { size: 12 * MiB, mode: '644', mtime: 1_700_000_000, sparse: false, layout: [{ kind: 'random', label: 'disk-full', length: 12 * MiB }] });
    // The bundled size doesn't depend on the random key: bundle once where there is room to learn it.
    const roomy = join(work.dir, 'roomy');
    mkdirSync(roomy);
    const r = await runCli('ec2-bundle-image', args(roomy));
    expect(r.code).toBe(0);
    const parts = names(roomy).filter((f) => f.includes('.part.'));
    expect(parts).toHaveLength(2);
    partBytes = parts.reduce((n, f) => n + Math.ceil(statSync(join(roomy, f)).size / PAGE) * PAGE, 0);
  });
  afterAll(() => {
    for (const m of mounts) execFileSync('umount', [m]);
    work.cleanup();
  });

  it('full in the middle of the first part: exit 254, one line, the disk empty again', async () => {
    const out = tmpfs('mid-part', 4 * MiB);
    const r = await runCli('ec2-bundle-image', args(out));
    expect(r.code).toBe(254);
    expect(r.stderr).toMatch(/^ERROR: .*\n$/);
    expect(r.stderr).toMatch(/ENOSPC|no space|disk is full/i);
    expect(names(out)).toEqual([]);
    expect(execFileSync('df', ['--output=used', '-B1', out], { encoding: 'utf8' }).split('\n')[1].trim()).toBe('0');
  });

  it('full at the manifest, every part written: no part under its name, nothing left', async () => {
    const out = tmpfs('at-manifest', partBytes);
    const r = await runCli('ec2-bundle-image', args(out));
    expect(r.code).toBe(254);
    expect(r.stderr).toMatch(/^ERROR: .*\n$/);
    expect(r.stderr).toMatch(/ENOSPC|no space|disk is full/i);
    expect(names(out)).toEqual([]);
  });
});
