// ec2-convert-to-ebs --snapshot of a 1 GiB image (half data, half zeros, in alternating 4 MiB runs) into the EBS
// stand-in with 20 ms added to every PutSnapshotBlock: --concurrency 1 vs the default (32), straight from the bundle
// (--keep-fstab), and the default through the staging file (the fstab path; the image is no filesystem, so the edit
// itself is skipped with a warning). Wall time and peak RSS (GNU time's maxrss) of the command.
// Usage: npm run build && node bench/convert-to-ebs.mjs [MiB] [delay-ms]
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MIB = Number(process.argv[2] ?? 1024);
const DELAY = Number(process.argv[3] ?? 20);
const RUN = 4 << 20;
const work = mkdtempSync(join(tmpdir(), 'bench-ebs-'));
const key = (n) => join(ROOT, 'test', 'fixtures', 'keys', n);

// The stand-ins are TypeScript test helpers: compiled once into dist/bench-build.
const tsc = spawnSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '--ignoreConfig', '--module', 'nodenext', '--moduleResolution', 'nodenext',
  '--target', 'es2022', '--skipLibCheck', '--types', 'node', '--outDir', join(ROOT, 'dist', 'bench-build'), '--rootDir', ROOT, join(ROOT, 'test', 'helpers', 'ebs-standin.ts')], { encoding: 'utf8' });
if (tsc.status !== 0) throw new Error(`compiling the stand-ins failed:\n${tsc.stdout}${tsc.stderr}`);
const { startEc2Standin } = await import('../dist/bench-build/test/helpers/ec2-standin.js');
const { startEbsStandin } = await import('../dist/bench-build/test/helpers/ebs-standin.js');

function run(cmd, args, env = {}) {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let out = '';
    c.stdout.on('data', (d) => (out += d));
    c.stderr.on('data', (d) => (out += d));
    c.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${args.join(' ')} exited ${code}: ${out}`))));
  });
}

// The image: 4 MiB of data (each 512 KiB block distinct, compressible so that bundling is quick), 4 MiB of zeros, …
const image = join(work, 'bench.img');
const fd = openSync(image, 'w');
const block = Buffer.alloc(512 * 1024);
for (let at = 0; at < MIB * 1024 * 1024; at += 2 * RUN) {
  for (let b = 0; b < RUN; b += block.length) {
    block.fill(`block ${at + b} of the benchmark image; `);
    writeSync(fd, block, 0, block.length, at + b);
  }
}
writeSync(fd, Buffer.alloc(1), 0, 1, MIB * 1024 * 1024 - 1);
closeSync(fd);
const bundle = join(work, 'bundle');
mkdirSync(bundle);
await run(process.execPath, [join(ROOT, 'bin', 'ec2-bundle-image.js'), '-i', image, '-d', bundle, '-c', key('user-cert.pem'), '-k', key('user-key.pem'),
  '-u', '123456789012', '-r', 'x86_64', '--ec2cert', key('ec2-cert.pem'), '--batch']);
rmSync(image);

const ec2 = await startEc2Standin({ regions: ['us-east-1'], images: {} });
const ebs = await startEbsStandin(ec2);
ebs.putDelayMs = DELAY;
const env = {
  AWS_ENDPOINT_URL_EC2: ec2.url, AWS_ENDPOINT_URL_EBS: ebs.url, AWS_ACCESS_KEY_ID: 'AKIDBENCH', AWS_SECRET_ACCESS_KEY: 'bench',
  AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null', AWS_EC2_METADATA_DISABLED: 'true', AWS_ENDPOINT_URL: '', AWS_REGION: 'us-east-1',
};
const results = [];
try {
  for (const [label, extra] of [['--keep-fstab --concurrency 1', ['--keep-fstab', '--concurrency', '1']], ['--keep-fstab (default 32)', ['--keep-fstab']], ['staged (fstab path, default 32)', []]]) {
    const rss = join(work, 'rss');
    const t = Date.now();
    ebs.maxInFlight = 0;
    await run('/usr/bin/time', ['-f', '%M', '-o', rss, process.execPath, join(ROOT, 'bin', 'ec2-convert-to-ebs.js'), '-m', join(bundle, 'bench.img.manifest.xml'), '-s', bundle,
      '-k', key('user-key.pem'), '--snapshot', '--batch', ...extra], env);
    const seconds = (Date.now() - t) / 1000;
    const peak = Number(readFileSync(rss, 'utf8').trim().split('\n').pop()) * 1024;
    const snap = [...ec2.snapshots.values()].pop();
    results.push({ run: label, seconds: Number(seconds.toFixed(1)), peakRssMB: Number((peak / 1e6).toFixed(0)), blocksWritten: snap.blocks.size, maxInFlight: ebs.maxInFlight, state: snap.state });
    ec2.snapshots.clear();
  }
  // For reference: ec2-unbundle -o of the same bundle into a file (the same pipeline without EBS).
  const rss = join(work, 'rss');
  const t = Date.now();
  await run('/usr/bin/time', ['-f', '%M', '-o', rss, process.execPath, join(ROOT, 'bin', 'ec2-unbundle.js'), '-m', join(bundle, 'bench.img.manifest.xml'), '-s', bundle,
    '-k', key('user-key.pem'), '-o', join(work, 'unbundled.img'), '--batch']);
  results.push({ run: 'ec2-unbundle -o FILE (reference)', seconds: Number(((Date.now() - t) / 1000).toFixed(1)), peakRssMB: Number((Number(readFileSync(rss, 'utf8').trim().split('\n').pop()) * 1024 / 1e6).toFixed(0)) });
} finally {
  await ebs.close();
  await ec2.close();
  rmSync(work, { recursive: true, force: true });
}
console.log(`ec2-convert-to-ebs --snapshot, ${MIB} MiB image (half data), ${DELAY} ms per PutSnapshotBlock:`);
console.table(results);
