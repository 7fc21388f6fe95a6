// Against s3rver on 127.0.0.1, same run: upload and download of a 200 MiB bundle, --concurrency 1 vs the default; then
// an image of that size bundled straight to S3 (ec2-bundle-image --bucket) vs bundled to disk and then uploaded.
// Usage: npm run build && node bench/s3.mjs [MiB]
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildManifestXml } from '../dist/format/manifest.js';
import { PART_SIZE, partCount, partName } from '../dist/format/part-name.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MIB = Number(process.argv[2] ?? 200);
const total = MIB * 1024 * 1024;
const work = mkdtempSync(join(tmpdir(), 'bench-s3-'));

function run(cmd, args) {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.on('data', (d) => (out += d));
    c.stderr.on('data', (d) => (out += d));
    c.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${args[0]} exited ${code}: ${out}`))));
  });
}

// A synthetic bundle: incompressible parts and a well-formed manifest (upload checks the part digests, not the signature).
const bundle = join(work, 'bundle');
mkdirSync(bundle);
const count = partCount(total);
const parts = [];
for (let i = 0; i < count; i++) {
  const data = randomBytes(Math.min(PART_SIZE, total - i * PART_SIZE));
  const filename = partName('bench.img', i, count);
  writeFileSync(join(bundle, filename), data);
  parts.push({ filename, digest: createHash('sha1').update(data).digest('hex') });
}
const hex = (n) => 'ab'.repeat(n);
const manifest = {
  version: '2007-10-10', bundler: { name: 'amitools', version: '0', release: '0' }, architecture: 'x86_64',
  blockDeviceMappings: [], productCodes: [], name: 'bench.img', user: '123456789012', type: 'machine', ancestry: [],
  digest: hex(20), size: total, bundledSize: total,
  ec2EncryptedKey: hex(256), userEncryptedKey: hex(256), ec2EncryptedIv: hex(256), userEncryptedIv: hex(256), parts,
};
const manifestPath = join(bundle, 'bench.img.manifest.xml');
writeFileSync(manifestPath, buildManifestXml(manifest, hex(256)));

const data = join(work, 's3rver');
mkdirSync(data);
const server = spawn(process.execPath, ['--openssl-legacy-provider', join(ROOT, 'node_modules/s3rver/bin/s3rver.js'),
  '-d', data, '-a', '127.0.0.1', '-p', '0', '--silent'], { stdio: ['ignore', 'pipe', 'pipe'] });
const url = await new Promise((resolve) => {
  let out = '';
  server.stdout.on('data', (d) => { out += d; const m = /listening on ([\d.]+:\d+)/.exec(out); if (m) resolve(`http://${m[1]}`); });
});
const creds = ['--url', url, '-a', 'S3RVER', '-s', 'S3RVER', '--batch'];
const bin = (name) => join(ROOT, 'bin', `${name}.js`);

async function timed(label, args) {
  const t0 = process.hrtime.bigint();
  await run(process.execPath, args);
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(`${label.padEnd(44)} ${s.toFixed(2).padStart(6)} s  ${(MIB * 1.048576 / s).toFixed(1).padStart(7)} MB/s`);
  return s;
}

// The image for the bundling comparison: incompressible, so the whole of it is uploaded.
const image = join(work, 'bench.img');
writeFileSync(image, randomBytes(total));
const keys = (name) => join(ROOT, 'test', 'fixtures', 'keys', name);
const bundleFlags = ['-i', image, '-c', keys('user-cert.pem'), '-k', keys('user-key.pem'), '-u', '123456789012', '-r', 'x86_64', '--ec2cert', keys('ec2-cert.pem'), '--batch'];
const s3Long = ['--url', url, '--access-key', 'S3RVER', '--secret-key', 'S3RVER'];

console.log(`S3 bench: ${MIB} MiB bundle (${count} parts) against s3rver 3.7.1 on 127.0.0.1, node ${process.version}`);
try {
  for (const [label, extra] of [['serial (--concurrency 1)', ['--concurrency', '1']], ['default (--concurrency 4)', []]]) {
    const tag = extra.length ? 'serial' : 'default';
    await timed(`upload   ${label}`, [bin('ec2-upload-bundle'), '-b', `bench-${tag}/images`, '-m', manifestPath, ...creds, ...extra]);
    const dl = join(work, `dl-${tag}`);
    mkdirSync(dl);
    await timed(`download ${label}`, [bin('ec2-download-bundle'), '-b', `bench-${tag}/images`, '-p', 'bench.img', '-d', dl, ...creds, ...extra]);
  }
  const local = join(work, 'bundled');
  mkdirSync(local);
  const b = await timed('bundle to -d', [bin('ec2-bundle-image'), ...bundleFlags, '-d', local]);
  const u = await timed('  then upload (--concurrency 4)', [bin('ec2-upload-bundle'), '-b', 'bench-two/images', '-m', join(local, 'bench.img.manifest.xml'), ...creds]);
  console.log(`${'bundle + upload'.padEnd(44)} ${(b + u).toFixed(2).padStart(6)} s  ${(MIB * 1.048576 / (b + u)).toFixed(1).padStart(7)} MB/s`);
  const copy = join(work, 'manifest-copy');
  mkdirSync(copy);
  await timed('bundle --bucket (parts straight to S3)', [bin('ec2-bundle-image'), ...bundleFlags, '-d', copy, '--bucket', 'bench-one/images', ...s3Long]);
} finally {
  server.kill('SIGTERM');
  await new Promise((r) => server.once('exit', r));
  rmSync(work, { recursive: true, force: true });
}
