// The proof of ec2-convert-to-ebs: a real Debian root filesystem, bundled by ec2-bundle-vol -P mbr and uploaded to
// s3rver, converted from S3 into a snapshot on the EBS stand-in and registered on the EC2 stand-in; the disk the
// snapshot's recorded blocks make boots under qemu, with the ephemeral fstab line gone and the root line kept.
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEbsStandin, type EbsStandin } from '../helpers/ebs-standin.js';
import { startEc2Standin, type Ec2Standin } from '../helpers/ec2-standin.js';
import { key, unmetPrerequisite } from '../helpers/paths.js';
import { runCli } from '../helpers/run.js';
import { startS3rver, type S3rver } from '../helpers/s3rver.js';
import { ExtImage, fsck, partitionTable } from '../helpers/volume-debugfs.js';
import { BOOT_MARKER, bootImage, bootTestScript, ensureDebianTree } from '../helpers/volume-debian.js';

const ROOT_LINE = '/dev/vda1 / ext4 defaults 0 1';
const EPHEMERAL_LINE = '/dev/sdb /media/ephemeral0 auto defaults,comment=cloudconfig 0 2';

const unmet = unmetPrerequisite('convert-to-ebs boot test', { slow: true, root: true, commands: ['debootstrap', 'qemu-system-x86_64', 'mke2fs', 'sfdisk', 'rsync', 'grub-mkimage', 'debugfs'] });
describe.skipIf(unmet !== undefined)('ec2-convert-to-ebs: the snapshot of a bundle-vol image boots (debootstrap + qemu)', () => {
  let work: string;
  let tree: string;
  let s3: S3rver;
  let ec2: Ec2Standin;
  let ebs: EbsStandin;

  beforeAll(async () => {
    tree = ensureDebianTree();
    work = await mkdtemp(join(tmpdir(), 'amitools-convert-boot-'));
    s3 = await startS3rver();
    ec2 = await startEc2Standin({ regions: ['us-east-1'], images: {} });
    ebs = await startEbsStandin(ec2);
  }, 900_000);

  afterAll(async () => {
    await ebs?.close();
    await ec2?.close();
    await s3?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('bundle-vol -P mbr → s3rver → --snapshot --register: the recorded disk boots, fstab edited, RegisterImage hvm', async () => {
    const env = {
      AWS_ENDPOINT_URL_S3: s3.url, AWS_ENDPOINT_URL_EC2: ec2.url, AWS_ENDPOINT_URL_EBS: ebs.url, AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER',
      AWS_PROFILE: 'amitools-test-none', AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null', AWS_EC2_METADATA_DISABLED: 'true',
      AMITOOLS_EC2_ENDPOINT: '', AWS_ENDPOINT_URL: '', AWS_REGION: '', AWS_DEFAULT_REGION: '',
    };
    const out = join(work, 'bundle');
    await mkdir(out);
    const script = join(work, 'boot.sh');
    await writeFile(script, `${bootTestScript()}printf '%s\\n' '${ROOT_LINE}' '${EPHEMERAL_LINE}' > "$T/etc/fstab"\n`, { mode: 0o755 });
    let t = Date.now();
    const b = await runCli('ec2-bundle-vol', ['-v', tree, '-d', out, '-P', 'mbr', '-s', '1024', '--no-inherit', '-S', script,
      '-c', key('user-cert.pem'), '-k', key('user-key.pem'), '-u', '123456789012', '-r', 'x86_64', '--ec2cert', key('ec2-cert.pem'), '--batch']);
    expect(b.stderr.split('\n').filter((l) => /^ERROR/.test(l))).toEqual([]);
    expect(b.code).toBe(0);
    await rm(join(out, 'image'));
    const u = await runCli('ec2-upload-bundle', ['-b', 'boot-bundles/debian', '-m', join(out, 'image.manifest.xml'), '--batch'], { env });
    expect(u.code, u.stderr).toBe(0);
    await rm(out, { recursive: true });
    console.log(`bundle-vol and upload: ${((Date.now() - t) / 1000).toFixed(1)} s`);

    t = Date.now();
    const c = await runCli('ec2-convert-to-ebs', ['-b', 'boot-bundles/debian', '-m', 'image.manifest.xml', '-k', key('user-key.pem'), '--cert', key('user-cert.pem'),
      '--snapshot', '--register', 'converted debian', '--batch'], { env });
    console.log(`ec2-convert-to-ebs: ${((Date.now() - t) / 1000).toFixed(1)} s`);
    expect(c.stderr).toBe('');
    expect(c.code).toBe(0);
    expect(c.stdout).toContain(`Removed from /etc/fstab: ${EPHEMERAL_LINE}`);
    const snapshotId = /^SNAPSHOT (snap-\S+)$/m.exec(c.stdout)?.[1];
    const imageId = /^IMAGE (ami-\S+)$/m.exec(c.stdout)?.[1];
    expect(snapshotId).toBeDefined();
    expect(imageId).toBeDefined();
    const register = ec2.log.filter((q) => q.action === 'RegisterImage');
    expect(register).toHaveLength(1);
    expect(register[0]!.params).toMatchObject({
      Name: 'converted debian', Architecture: 'x86_64', VirtualizationType: 'hvm', RootDeviceName: '/dev/xvda',
      'BlockDeviceMapping.1.DeviceName': '/dev/xvda', 'BlockDeviceMapping.1.Ebs.SnapshotId': snapshotId,
    });
    expect(register[0]!.params.KernelId).toBeUndefined();

    // The disk the recorded blocks make (a sparse copy: qemu writes to what it boots).
    const disk = join(work, 'disk.img');
    execFileSync('cp', ['--sparse=always', ec2.snapshots.get(snapshotId!)!.path, disk]);
    const table = partitionTable(disk);
    expect(table).toMatchObject({ label: 'dos', partitions: [{ start: 2048, type: '83', bootable: true }] });
    const root = new ExtImage(disk, 2048 * 512);
    expect(root.cat('/etc/fstab').toString()).toBe(`${ROOT_LINE}\n`);
    expect(root.cat('/etc/fstab.orig').toString()).toBe(`${ROOT_LINE}\n${EPHEMERAL_LINE}\n`);
    const check = fsck(disk, 2048 * 512);
    expect(check.code, check.output).toBe(0);

    t = Date.now();
    const boot = await bootImage(disk, 240_000);
    console.log(`qemu boot of the snapshot's disk: ${((Date.now() - t) / 1000).toFixed(1)} s`);
    const tail = boot.console.slice(-3000);
    expect(boot.timedOut, `qemu did not power off in time; console tail:\n${tail}`).toBe(false);
    expect(boot.console, `console tail:\n${tail}`).toContain(BOOT_MARKER);
    expect(/ROOTLINE: (\S+) \/ ext4/.exec(boot.console)?.[1], `console tail:\n${tail}`).toBe('/dev/vda1');
  }, 1_800_000);
});
