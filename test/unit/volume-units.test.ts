import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isUnder, mountOf, nonLocalMountsUnder, parseMountInfo } from '../../src/volume/mounts.js';
import { buildSelection, parseFilterDebug, rsyncPattern, volumeRelative } from '../../src/volume/select.js';
import { detectScheme, planLayout, sfdiskScript, tableTypeOf } from '../../src/volume/disk-layout.js';
import { filesystemCapacity } from '../../src/volume/mkfs.js';
import { kernelRootArgs, patchBootSector, patchCoreBlocklist, rootWillExist } from '../../src/volume/bootloader.js';
import { ec2Fstab } from '../../src/volume/stage.js';
import { unescapeRsync } from '../../src/volume/rsync.js';

const MOUNTINFO = [
  '22 27 0:21 / /proc rw,relatime - proc proc rw',
  '27 1 259:2 / / rw,relatime - ext4 /dev/nvme0n1p1 rw',
  '30 27 0:30 / /home/shared rw - nfs4 srv:/export rw',
  '31 27 259:3 / /srv/data rw - xfs /dev/nvme1n1 rw',
  '32 31 0:40 / /srv/data/tmp rw - tmpfs tmpfs rw',
  '33 27 259:4 /sub /mnt/with\\040space rw - ext4 /dev/nvme2n1 rw',
].join('\n');

describe('mountinfo', () => {
  const mounts = parseMountInfo(MOUNTINFO);

  it('parses fields and unescapes octal escapes', () => {
    expect(mounts[1]).toMatchObject({ device: '259:2', mountPoint: '/', fsType: 'ext4', source: '/dev/nvme0n1p1', root: '/' });
    expect(mounts[5]).toMatchObject({ mountPoint: '/mnt/with space', root: '/sub' });
  });

  it('finds the mount holding a path and the non-local mounts below a volume', () => {
    expect(mountOf('/srv/data/x', mounts)?.fsType).toBe('xfs');
    expect(mountOf('/srv/datax', mounts)?.mountPoint).toBe('/');
    expect(nonLocalMountsUnder('/', mounts)).toEqual(['/home/shared', '/proc', '/srv/data/tmp']);
    expect(nonLocalMountsUnder('/srv/data', mounts)).toEqual(['/srv/data/tmp']);
    expect(isUnder('/a/b', '/a')).toBe(true);
    expect(isUnder('/ab', '/a')).toBe(false);
  });
});

describe('selection rules', () => {
  it('orders -e, emptied directories, -i, the keep list, then the sensitive filter', () => {
    const s = buildSelection({ excludes: ['/opt/x/', '/tmp/*'], includes: ['/root/.ssh/authorized_keys'], filter: true, emptied: ['/srv/nfs', '/bundle'] });
    expect(s.rules.slice(0, 10)).toEqual([
      '- /opt/x', '- /tmp/*',
      '- /dev/*', '- /media/*', '- /mnt/*', '- /proc/*', '- /sys/*', '- /srv/nfs/*', '- /bundle/*',
      '+ /root/.ssh/authorized_keys',
    ]);
    expect(s.rules).toContain('+ /etc/ssl/certs/***');
    expect(s.rules).toContain('+ /etc/apt/trusted.gpg*');
    expect(s.rules).toContain('+ /etc/apt/trusted.gpg.d/***');
    expect(s.rules.indexOf('+ /etc/pki/***')).toBeLessThan(s.rules.indexOf('- *.pem'));
    expect(s.rules.at(-1)).toBe('- .bash_history');
    expect(s.sensitive.get('.ssh/authorized_keys')).toBe('*/.ssh/authorized_keys');
    expect(s.sensitive.size).toBe(14);
  });

  it('has neither keep list nor filter with --no-filter', () => {
    const s = buildSelection({ excludes: [], includes: [], filter: false, emptied: [] });
    expect(s.rules).toEqual(['- /dev/*', '- /media/*', '- /mnt/*', '- /proc/*', '- /sys/*']);
  });

  it('maps paths and patterns', () => {
    expect(rsyncPattern('*/#*#')).toBe('#*#');
    expect(rsyncPattern('*.pem')).toBe('*.pem');
    expect(volumeRelative('/srv/root', '/srv/root/opt')).toBe('/opt');
    expect(volumeRelative('/srv/root', '/srv/rootx')).toBeUndefined();
    expect(volumeRelative('/', '/tmp')).toBe('/tmp');
  });

  it("parses rsync's filter debug lines and escapes", () => {
    expect(parseFilterDebug('[sender] hiding file a/x y.pem because of pattern *.pem')).toEqual({ path: '/a/x y.pem', pattern: '*.pem', directory: false });
    expect(parseFilterDebug('[sender] hiding directory proc/1 because of pattern /proc/*')).toMatchObject({ directory: true, pattern: '/proc/*' });
    expect(parseFilterDebug('[sender] showing file etc/ssl/certs/a.pem because of pattern /etc/ssl/certs/***')).toBeUndefined();
    expect(unescapeRsync('a\\#012b\\#303\\#251').toString('utf8')).toBe('a\nbé');
  });
});

describe('disk layout', () => {
  it('places the root partition at 1 MiB (MBR) or 2 MiB after a BIOS boot partition (GPT)', () => {
    const mbr = planLayout('mbr', 64);
    expect(mbr).toMatchObject({ rootStart: 1048576, rootBytes: 63 * 1048576, coreArea: { start: 512 } });
    expect(sfdiskScript(mbr)).toContain('start=2048, size=129024, type=83, bootable');
    const gpt = planLayout('gpt', 64);
    expect(gpt.rootStart).toBe(2 * 1048576);
    expect(gpt.rootBytes).toBe(61 * 1048576);
    expect(sfdiskScript(gpt)).toContain('start=2048, size=2048, type=21686148-6449-6E6F-744E-656564454649');
    const none = planLayout('none', 64);
    expect(none).toMatchObject({ rootStart: 0, rootBytes: 64 * 1048576 });
    expect(none.coreArea).toBeUndefined();
  });

  it('recognises partition tables from the first two sectors', () => {
    const b = Buffer.alloc(1024);
    expect(tableTypeOf(b)).toBe('none');
    b[510] = 0x55; b[511] = 0xaa;
    expect(tableTypeOf(b)).toBe('mbr');
    b[450] = 0xee;
    expect(tableTypeOf(b)).toBe('gpt');
    b[450] = 0x83;
    b.write('EFI PART', 512, 'latin1');
    expect(tableTypeOf(b)).toBe('gpt');
  });

  describe('through a sysfs tree', () => {
    let root: string;
    beforeAll(async () => {
      root = await mkdtemp(join(tmpdir(), 'amitools-sysfs-'));
      const sys = join(root, 'sys');
      const devices = join(sys, 'devices', 'pci0000:00', 'nvme', 'nvme0', 'nvme0n1');
      await mkdir(join(devices, 'nvme0n1p1'), { recursive: true });
      await writeFile(join(devices, 'nvme0n1p1', 'partition'), '1\n');
      const xvd = join(sys, 'devices', 'vbd-51712', 'block', 'xvda');
      await mkdir(join(xvd, 'xvda1'), { recursive: true });
      await writeFile(join(xvd, 'xvda1', 'partition'), '1\n');
      const whole = join(sys, 'devices', 'virtio', 'block', 'vda');
      await mkdir(whole, { recursive: true });
      const dm = join(sys, 'devices', 'virtual', 'block', 'dm-0');
      await mkdir(join(dm, 'slaves'), { recursive: true });
      await symlink(join(devices, 'nvme0n1p1'), join(dm, 'slaves', 'nvme0n1p1'));
      await mkdir(join(sys, 'dev', 'block'), { recursive: true });
      await symlink(join(devices, 'nvme0n1p1'), join(sys, 'dev', 'block', '259:1'));
      await symlink(join(xvd, 'xvda1'), join(sys, 'dev', 'block', '202:1'));
      await symlink(whole, join(sys, 'dev', 'block', '254:0'));
      await symlink(dm, join(sys, 'dev', 'block', '253:0'));
      const dev = join(root, 'dev');
      await mkdir(dev);
      const gptHead = Buffer.alloc(1024);
      gptHead[510] = 0x55; gptHead[511] = 0xaa; gptHead[450] = 0xee; gptHead.write('EFI PART', 512, 'latin1');
      await writeFile(join(dev, 'nvme0n1'), gptHead);
      const mbrHead = Buffer.alloc(1024);
      mbrHead[510] = 0x55; mbrHead[511] = 0xaa; mbrHead[450] = 0x83;
      await writeFile(join(dev, 'xvda'), mbrHead);
    });
    afterAll(async () => { await rm(root, { recursive: true, force: true }); });

    const detect = (d: string) => detectScheme(d, { sysfs: join(root, 'sys'), devDir: join(root, 'dev') });

    it('NVMe partition on a GPT disk → gpt', async () => expect((await detect('259:1')).scheme).toBe('gpt'));
    it('Xen partition on an MBR disk → mbr', async () => expect((await detect('202:1')).scheme).toBe('mbr'));
    it('whole disk → none', async () => expect((await detect('254:0')).scheme).toBe('none'));
    it('device-mapper over a GPT partition → gpt', async () => expect(await detect('253:0')).toMatchObject({ scheme: 'gpt', reason: expect.stringContaining('nvme0n1') }));
    it('no block device (overlay) → gpt', async () => expect((await detect('0:55')).scheme).toBe('gpt'));
  });
});

describe('filesystem capacity', () => {
  it('leaves room for inode tables and the journal', () => {
    const c = filesystemCapacity(1535 * 1048576, 'ext4');
    expect(c.bytes).toBeLessThan(1535 * 1048576 - 64 * 1048576);
    expect(c.bytes).toBeGreaterThan(1300 * 1048576);
    expect(c.inodes).toBe(Math.floor((1535 * 1048576) / 16384));
    expect(filesystemCapacity(63 * 1048576, 'ext2').inodes).toBe(Math.floor((63 * 1048576) / 4096));
  });
});

describe('boot code', () => {
  it('patches boot.img like grub-bios-setup and keeps the partition table area', () => {
    const boot = Buffer.alloc(512, 0xcc);
    const out = patchBootSector(boot, 2048);
    expect(out.length).toBe(0x1b8);
    expect(out.readBigUInt64LE(0x5c)).toBe(2048n);
    expect([out[0x66], out[0x67]]).toEqual([0x90, 0x90]);
  });

  it("points core.img's first blocklist at the rest of itself", () => {
    const core = Buffer.alloc(512 * 100);
    const out = patchCoreBlocklist(core, 1);
    expect(out.readBigUInt64LE(0x1f4)).toBe(2n);
    expect(out.readUInt16LE(0x1fc)).toBe(99);
    expect(out.readUInt16LE(0x1fe)).toBe(0x820);
  });

  it('reads root= from GRUB 2 and legacy configs and checks it against the image', () => {
    const cfg = "menuentry 'x' {\n  linux /boot/vmlinuz ro root=UUID=abcd-1 quiet\n}\n title x\n kernel /vmlinuz root=LABEL=cloudimg-rootfs\n";
    expect(kernelRootArgs(cfg)).toEqual(['UUID=abcd-1', 'LABEL=cloudimg-rootfs']);
    const fs = { type: 'ext4', uuid: 'ABCD-1', label: 'cloudimg-rootfs', notes: [] };
    expect(rootWillExist('UUID=abcd-1', fs, 'mbr')).toBe(true);
    expect(rootWillExist('LABEL=cloudimg-rootfs', fs, 'mbr')).toBe(true);
    expect(rootWillExist('LABEL=other', fs, 'mbr')).toBe(false);
    expect(rootWillExist('/dev/xvda1', fs, 'gpt')).toBe(true);
    expect(rootWillExist('/dev/nvme0n1p1', fs, 'mbr')).toBe(true);
    expect(rootWillExist('/dev/sda2', fs, 'mbr')).toBe(false);
    expect(rootWillExist('/dev/xvda', fs, 'none')).toBe(true);
    expect(rootWillExist('/dev/xvda', fs, 'mbr')).toBe(false);
  });

  it('generates an EC2 fstab naming the root by UUID', () => {
    expect(ec2Fstab('u-1', 'ext4').split('\n')[0]).toBe('UUID=u-1\t/\text4\tdefaults\t1 1');
  });
});
