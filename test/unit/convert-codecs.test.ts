// The pure codecs of ec2-convert-to-ebs: which fstab entries are instance stores, and where the root filesystem of
// an image starts (partition tables written by sfdisk, the oracle).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { planFstab } from '../../src/format/fstab.js';
import { filesystemType, findRootFilesystem, ROOT_SEARCH_BYTES } from '../../src/format/partition-table.js';
import { scratch } from '../helpers/bundles.js';
import { blankFile, makeExt2Image } from '../helpers/disk-images.js';

const work = scratch('convert-codecs');
afterAll(work.cleanup);

describe('planFstab', () => {
  it('removes instance-store entries by device, mapped device, label, cloud-init mark and mount point; keeps the rest as it was', () => {
    const text = [
      '# <file system> <mount point> <type> <options> <dump> <pass>',
      'UUID=0a1b / ext4 defaults 0 1',
      '/dev/sdb /mnt auto defaults 0 0',
      '/dev/xvdz2\t/scratch ext4 defaults 0 0',
      '/dev/sda2 /mnt2 ext3 defaults 0 0',
      '/dev/xvda3 none swap sw 0 0',
      'LABEL=ephemeral0 /data ext4 defaults 0 0',
      '/dev/nvme1n1 /media/ephemeral1 ext4 defaults 0 0',
      'tmpfs /tmp tmpfs defaults,comment=cloudconfig 0 0',
      '/dev/sda1 /boot ext4 defaults 0 2',
      '/dev/sdaa /weird ext4 defaults 0 0',
      '  # /dev/sdc /commented auto defaults 0 0',
      '',
    ].join('\n');
    const plan = planFstab(text, ['/dev/sda2', '/dev/sda3']);
    expect(plan.removed.map((r) => [r.line, r.reason])).toEqual([
      [3, 'an instance-store device'], [4, 'an instance-store device'],
      [5, "an ephemeral or swap device in the manifest's block device mapping"], [6, "an ephemeral or swap device in the manifest's block device mapping"],
      [7, 'an instance-store label'], [8, 'an instance-store mount point'], [9, 'added by cloud-init for an instance store'],
    ]);
    expect(plan.text).toBe([
      '# <file system> <mount point> <type> <options> <dump> <pass>', 'UUID=0a1b / ext4 defaults 0 1', '/dev/sda1 /boot ext4 defaults 0 2',
      '/dev/sdaa /weird ext4 defaults 0 0', '  # /dev/sdc /commented auto defaults 0 0', '',
    ].join('\n'));
  });

  it('leaves a file without such entries byte for byte, with or without a final newline', () => {
    for (const text of ['LABEL=root / ext4 defaults 0 1\n', 'LABEL=root / ext4 defaults 0 1', '']) expect(planFstab(text)).toEqual({ text, removed: [] });
  });
});

describe('findRootFilesystem', () => {
  const head = (path: string) => readFileSync(path).subarray(0, ROOT_SEARCH_BYTES);
  const disk = (name: string, script: string) => {
    const path = join(work.dir, name);
    blankFile(path, 8 << 20);
    execFileSync('sfdisk', ['--quiet', '--no-reread', '--no-tell-kernel', path], { input: script, stdio: ['pipe', 'pipe', 'pipe'] });
    return path;
  };

  it('an MBR disk: the first Linux partition, past a swap partition', () => {
    const path = disk('mbr', 'label: dos\nunit: sectors\n\nstart=2048, size=2048, type=82\nstart=4096, type=83, bootable\n');
    expect(findRootFilesystem(head(path))).toEqual({ kind: 'partition', offset: 4096 * 512, description: 'partition 2 of an MBR disk, at byte 2097152' });
  });

  it('a GPT disk: the first Linux filesystem partition, past a BIOS boot partition', () => {
    const path = disk('gpt', 'label: gpt\nunit: sectors\n\nstart=2048, size=2048, type=21686148-6449-6E6F-744E-656564454649\nstart=6144, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n');
    expect(findRootFilesystem(head(path))).toEqual({ kind: 'partition', offset: 6144 * 512, description: 'partition 2 of a GPT disk, at byte 3145728' });
  });

  it('no Linux partition: none, with the reason; a bare ext2 filesystem: the whole image', () => {
    const path = disk('fat', 'label: dos\nunit: sectors\n\nstart=2048, type=c\n');
    expect(findRootFilesystem(head(path))).toMatchObject({ kind: 'none', description: 'an MBR disk without a Linux (type 83) primary partition' });
    const fs = join(work.dir, 'fs.img');
    makeExt2Image(fs, 4);
    expect(findRootFilesystem(head(fs))).toMatchObject({ kind: 'bare', offset: 0 });
    expect(filesystemType(head(fs))).toBe('ext');
    expect(filesystemType(Buffer.from('XFSB'))).toBe('xfs');
    expect(filesystemType(Buffer.alloc(2048))).toBeUndefined();
  });
});
