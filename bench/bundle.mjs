#!/usr/bin/env node
// Benchmark: our ec2-bundle-image / ec2-unbundle against the standard-tool pipelines, on two cached images: a real
// OS image (the boot test's Debian tree in a 2 GiB ext4 made with `mke2fs -d`) and a synthetic one (first half
// pseudo-random, second half written zeros); plus the parallel gzip stage alone.
// Run with `npm run bench` (builds first). Options: --images os,synthetic (default both), --size MiB (synthetic image,
// default 1024), --gzip-size MiB (per data kind in the gzip stage bench, default 64), --runs N (keep the fastest),
// --skip-gzip, --skip-bundle, --no-verify, --keep, --levels (each gzip level 1-9 on each image's tar stream: time,
// CPU and size against the gzip -9 pipeline's), --unbundle-to DIR (where unbundled images go, e.g. /dev/shm: the disk out
// of the race). The images are built once into /var/cache/amitools-test (the OS
// image needs root and debootstrap, like the boot test); --images synthetic runs without them.
// Peak RSS and CPU come from GNU time (%M KiB, %U + %S s). GNU time around `bash -c 'a | b'` would report only the
// largest single process, so each pipeline stage runs under its own GNU time: we print the largest process and the
// sum of the stages that run at the same time, and the CPU seconds of all stages. CPU seconds barely move with the
// machine's load; wall time does. Runs of the contenders are interleaved; the fastest of each is kept.
import { spawn, spawnSync } from 'node:child_process';
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { createGzip } from 'node:zlib';
import { OS_IMAGE, ensureOsImage } from '../test/helpers/debian-tree.mjs';

const MiB = 1024 * 1024;
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const KEYS = join(ROOT, 'test', 'fixtures', 'keys');
const OUT = join(ROOT, 'bench', 'out');
const GNU_TIME = '/usr/bin/time';
const SYNTHETIC_DIR = dirname(OS_IMAGE);

function parseArgs(argv) {
  const o = { images: ['os', 'synthetic'], size: 1024, gzipSize: 64, runs: 1, gzip: true, bundle: true, verify: true, keep: false, levels: false, unbundleTo: OUT };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const num = () => {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v < 1) throw new Error(`${a} needs a positive integer`);
      return v;
    };
    if (a === '--images') {
      o.images = String(argv[++i] ?? '').split(',').filter(Boolean);
      if (o.images.length === 0 || o.images.some((x) => x !== 'os' && x !== 'synthetic')) throw new Error('--images takes os, synthetic or both');
    } else if (a === '--size') o.size = num();
    else if (a === '--gzip-size') o.gzipSize = num();
    else if (a === '--runs') o.runs = num();
    else if (a === '--skip-gzip') o.gzip = false;
    else if (a === '--skip-bundle') o.bundle = false;
    else if (a === '--no-verify') o.verify = false;
    else if (a === '--keep') o.keep = true;
    else if (a === '--levels') o.levels = true;
    else if (a === '--unbundle-to') o.unbundleTo = String(argv[++i] ?? '');
    else if (a === '-h' || a === '--help') {
      console.log('usage: node bench/bundle.mjs [--images os,synthetic] [--size MiB] [--gzip-size MiB] [--runs N] [--skip-gzip] [--skip-bundle] [--no-verify] [--keep] [--levels] [--unbundle-to DIR]');
      process.exit(0);
    } else throw new Error(`unknown option ${a}`);
  }
  return o;
}

// ---------------------------------------------------------------- data

/** Deterministic fast pseudo-random bytes: the AES-128-CTR keystream of a fixed key. */
function keystream(label) {
  const seed = createHash('sha256').update(label).digest();
  const cipher = createCipheriv('aes-128-ctr', seed.subarray(0, 16), seed.subarray(16, 32));
  const zeros = Buffer.alloc(4 * MiB);
  return (n) => (n === zeros.length ? cipher.update(zeros) : cipher.update(zeros.subarray(0, n)));
}

function textBlock(n) {
  const lines = [];
  let len = 0;
  for (let i = 0; len < n; i++) {
    const l = `${String(i).padStart(8, '0')} Lorem ipsum dolor sit amet, value=${(i * 2654435761) % 1000003} path=/usr/lib/x86_64/lib${i % 97}.so\n`;
    lines.push(l);
    len += l.length;
  }
  return Buffer.from(lines.join(''), 'ascii').subarray(0, n);
}

async function writeBenchImage(path, bytes) {
  const fh = await open(path, 'w');
  try {
    const next = keystream('amitools bench image');
    const zeros = Buffer.alloc(4 * MiB);
    const half = Math.floor(bytes / 2);
    for (let pos = 0; pos < bytes;) {
      const n = Math.min(4 * MiB, (pos < half ? half : bytes) - pos);
      const buf = pos < half ? next(n) : zeros.subarray(0, n);
      await fh.write(buf, 0, n, pos);
      pos += n;
    }
  } finally {
    await fh.close();
  }
}

/** The synthetic image, written once and kept beside the OS image (the same bytes for the same size). */
async function ensureSyntheticImage(mib) {
  const path = join(SYNTHETIC_DIR, `bench-synthetic-${mib}m.img`);
  const marker = `${path}.complete`;
  if (existsSync(path) && existsSync(marker)) return path;
  mkdirSync(SYNTHETIC_DIR, { recursive: true });
  await writeBenchImage(`${path}.partial`, mib * MiB);
  renameSync(`${path}.partial`, path);
  writeFileSync(marker, 'first half AES-128-CTR keystream of SHA-256("amitools bench image"), second half written zeros\n');
  return path;
}

// ---------------------------------------------------------------- measuring

const TIME_FORMAT = '%M %U %S';

/** Lines of TIME_FORMAT → largest RSS, sum of RSS (KiB) and CPU seconds. */
function usage(text) {
  const rows = text.trim().split('\n').map((l) => l.trim().split(/\s+/).map(Number)).filter((r) => r.length === 3 && r.every(Number.isFinite));
  if (rows.length === 0) throw new Error(`no GNU time figures in ${JSON.stringify(text)}`);
  return {
    largestKiB: Math.max(...rows.map((r) => r[0])),
    sumKiB: rows.reduce((a, r) => a + r[0], 0),
    cpu: rows.reduce((a, r) => a + r[1] + r[2], 0),
  };
}

/** Runs argv under GNU time; returns wall seconds (our clock), CPU seconds and peak RSS in MiB. */
async function timed(argv, opts = {}) {
  const file = join(OUT, `usage-${process.pid}.txt`);
  const t0 = process.hrtime.bigint();
  const r = await run(GNU_TIME, ['-f', TIME_FORMAT, '-o', file, ...argv], opts);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.code !== 0) throw new Error(`${argv.join(' ')} failed (exit ${r.code}): ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ')}`);
  const u = usage(readFileSync(file, 'utf8'));
  rmSync(file, { force: true });
  return { seconds, cpu: u.cpu, rssMiB: u.largestKiB / 1024, sumMiB: u.largestKiB / 1024 };
}

function run(cmd, args, opts = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd ?? ROOT, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A bash script whose every stage runs as `"$T" -f "$F" -a -o "$U/<group>" cmd`: stages of one group run at the same
 *  time (their RSS summed), groups one after another. Lines `mark NAME EPOCH` on stdout time its phases. */
async function timedScript(script, groups, cwd) {
  const dir = join(OUT, `usage-${process.pid}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const t0 = process.hrtime.bigint();
  const r = await run('bash', ['-c', `set -euo pipefail\n${script}`], { cwd, env: { U: dir, T: GNU_TIME, F: TIME_FORMAT } });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.code !== 0) throw new Error(`tool pipeline failed (exit ${r.code}): ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  const each = groups.map((g) => usage(readFileSync(join(dir, g), 'utf8')));
  rmSync(dir, { recursive: true, force: true });
  const marks = Object.fromEntries(r.stdout.trim().split('\n').filter((l) => l.startsWith('mark ')).map((l) => l.split(' ').slice(1)).map(([k, v]) => [k, Number(v)]));
  return {
    seconds,
    cpu: each.reduce((a, u) => a + u.cpu, 0),
    rssMiB: Math.max(...each.map((u) => u.largestKiB)) / 1024,
    sumMiB: Math.max(...each.map((u) => u.sumKiB)) / 1024,
    marks,
  };
}

// ---------------------------------------------------------------- the four contenders

const sh = (s) => `'${String(s).replaceAll("'", "'\\''")}'`;
const digitsOf = 'n=$(( ($(stat -c %s x.tar.gz.enc) + 10485759) / 10485760 ))';

async function bundleOurs(image, dir, level) {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return timed([process.execPath, join(ROOT, 'bin', 'ec2-bundle-image.js'), '-i', image,
    '-c', join(KEYS, 'user-cert.pem'), '-k', join(KEYS, 'user-key.pem'), '-u', '123456789012', '-r', 'x86_64',
    '--ec2cert', join(KEYS, 'ec2-cert.pem'), '-d', dir, '--batch', ...(level === undefined ? [] : ['--compression-level', String(level)])]);
}

/** The original's pipeline with `compressor` (e.g. `gzip -9`, or euca2ools' `pigz -6`). */
async function bundleTools(image, dir, compressor, keyHex, ivHex) {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const name = image.split('/').pop();
  const script = `
    echo "mark start $(date +%s.%N)"
    "$T" -f "$F" -a -o "$U/pipe" tar -c -h -S --owner 0 --group 0 -C ${sh(dirname(image))} ${sh(name)} \\
      | "$T" -f "$F" -a -o "$U/pipe" ${compressor} \\
      | "$T" -f "$F" -a -o "$U/pipe" openssl enc -e -aes-128-cbc -K ${keyHex} -iv ${ivHex} > x.tar.gz.enc
    echo "mark piped $(date +%s.%N)"
    ${digitsOf}
    "$T" -f "$F" -a -o "$U/split" split -b 10M -d -a \${#n} x.tar.gz.enc ${sh(`${name}.part.`)}
    rm x.tar.gz.enc
    "$T" -f "$F" -a -o "$U/sha1" sha1sum ${sh(name)}.part.* > parts.sha1
    echo "mark end $(date +%s.%N)"`;
  const r = await timedScript(script, ['pipe', 'split', 'sha1'], dir);
  r.note = `tar|${compressor.split(' ')[0]}|openssl ${(r.marks.piped - r.marks.start).toFixed(1)} s + split, sha1sum ${(r.marks.end - r.marks.piped).toFixed(1)} s`;
  return r;
}

async function unbundleOurs(bundleDir, dest) {
  rmSync(dest, { recursive: true, force: true });
  mkdirSync(dest, { recursive: true });
  const manifest = readdirSync(bundleDir).find((f) => f.endsWith('.manifest.xml'));
  return timed([process.execPath, join(ROOT, 'bin', 'ec2-unbundle.js'), '-m', join(bundleDir, manifest),
    '-k', join(KEYS, 'user-key.pem'), '-s', bundleDir, '-d', dest, '--batch']);
}

/** The floor under both unbundles: writing the image's data (holes kept) from the page cache, nothing else. */
async function writeFloor(image, dest) {
  rmSync(dest, { recursive: true, force: true });
  mkdirSync(dest, { recursive: true });
  return timed(['cp', '--sparse=always', image, dest]);
}

/** The reverse pipeline over the parts a manifest lists (key and IV taken from it beforehand with openssl). */
async function unbundleTools(bundleDir, dest) {
  rmSync(dest, { recursive: true, force: true });
  mkdirSync(dest, { recursive: true });
  const { key, iv, parts } = bundleSecrets(bundleDir);
  const script = `
    "$T" -f "$F" -a -o "$U/pipe" cat ${parts.map(sh).join(' ')} \\
      | "$T" -f "$F" -a -o "$U/pipe" openssl enc -d -aes-128-cbc -K ${key} -iv ${iv} \\
      | "$T" -f "$F" -a -o "$U/pipe" gunzip \\
      | "$T" -f "$F" -a -o "$U/pipe" tar -x -C ${sh(dest)}`;
  return timedScript(script, ['pipe'], bundleDir);
}

// ---------------------------------------------------------------- checks (not timed)

async function sha1OfFile(path) {
  const h = createHash('sha1');
  await pipeline(createReadStream(path, { highWaterMark: 4 * MiB }), h);
  return h.digest('hex');
}

/** Key, IV (RSA-decrypted from our manifest with openssl) and part names of one of our bundles. */
function bundleSecrets(bundleDir) {
  const manifestName = readdirSync(bundleDir).find((f) => f.endsWith('.manifest.xml'));
  const xml = readFileSync(join(bundleDir, manifestName), 'utf8');
  const field = (tag) => xml.match(new RegExp(`<${tag}[^>]*>([0-9a-f]+)</${tag}>`))[1];
  const rsaDecrypt = (hex) => {
    const r = spawnSync('openssl', ['pkeyutl', '-decrypt', '-inkey', join(KEYS, 'user-key.pem')], { input: Buffer.from(hex, 'hex') });
    if (r.status !== 0) throw new Error(`openssl pkeyutl could not decrypt our bundle's key: ${r.stderr}`);
    return r.stdout.toString('ascii');
  };
  const parts = [...xml.matchAll(/<filename>([^<]+)<\/filename>/g)].map((m) => m[1]);
  return { key: rsaDecrypt(field('user_encrypted_key')), iv: rsaDecrypt(field('user_encrypted_iv')), parts };
}

/** Opens OUR bundle with the standard tools: openssl enc -d | gunzip | tar -x, untimed. */
async function openOursWithTools(bundleDir, dest) {
  const { key, iv, parts } = bundleSecrets(bundleDir);
  rmSync(dest, { recursive: true, force: true });
  mkdirSync(dest, { recursive: true });
  const script = `cat ${parts.map(sh).join(' ')} | openssl enc -d -aes-128-cbc -K ${key} -iv ${iv} | gunzip | tar -x -C ${sh(dest)}`;
  const r = await run('bash', ['-c', `set -euo pipefail\n${script}`], { cwd: bundleDir });
  if (r.code !== 0) throw new Error(`our bundle does not open with openssl | gunzip | tar: ${r.stderr.trim()}`);
}

async function expectSameFile(path, sha1, what) {
  if (!existsSync(path)) throw new Error(`${what}: ${path} is missing`);
  const got = await sha1OfFile(path);
  if (got !== sha1) throw new Error(`${what}: ${path} differs from the image (SHA-1 ${got}, expected ${sha1})`);
}

// ---------------------------------------------------------------- gzip stage alone

async function gzipStage(o) {
  const { createParallelGzip } = await import(join(ROOT, 'dist', 'stream', 'gzip-parallel.js'));
  const bytes = o.gzipSize * MiB;
  const next = keystream('amitools bench gzip');
  const kinds = { random: next(4 * MiB), zeros: Buffer.alloc(4 * MiB), text: textBlock(4 * MiB) };
  // Feeds `bytes` of the kind in 1 MiB writes; the 4 MiB block repeats, which a 32 KiB window cannot exploit.
  const source = (block) => Readable.from((function* () {
    for (let pos = 0; pos < bytes; pos += MiB) yield block.subarray(pos % block.length, pos % block.length + MiB);
  })());
  const measure = async (make, block) => {
    let out = 0;
    const t0 = process.hrtime.bigint();
    await pipeline(source(block), make(), new Writable({ write(c, _e, cb) { out += c.length; cb(); } }));
    return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, out };
  };
  const cli = (level, block) => new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn('gzip', [`-${level}`, '-c'], { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = 0;
    child.stdout.on('data', (d) => (out += d.length));
    child.on('error', reject);
    child.on('close', () => resolve({ seconds: Number(process.hrtime.bigint() - t0) / 1e9, out }));
    pipeline(source(block), child.stdin).catch(reject);
  });
  console.log(`\nGzip stage alone: ${o.gzipSize} MiB of each kind, fed in 1 MiB writes (MB/s of input; ratio = output/input)`);
  console.log(pad('', 20) + ['random', 'zeros', 'text'].map((k) => pad(k, 18, true)).join(''));
  for (const level of [9, 6]) {
    const rows = [
      [`parallel L${level} w1`, (block) => measure(() => createParallelGzip({ level, workers: 1 }), block)],
      [`parallel L${level} w2`, (block) => measure(() => createParallelGzip({ level, workers: 2 }), block)],
      [`zlib L${level} (1 stream)`, (block) => measure(() => createGzip({ level }), block)],
      [`gzip -${level}`, (block) => cli(level, block)],
    ];
    for (const [label, fn] of rows) {
      const cells = [];
      for (const block of Object.values(kinds)) {
        const r = await fn(block);
        cells.push(`${(bytes / 1e6 / r.seconds).toFixed(1)} (${(r.out / bytes).toFixed(3)})`);
      }
      console.log(pad(label, 20) + cells.map((c) => pad(c, 18, true)).join(''));
    }
  }
}

const load = () => `load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`;

function pad(s, n, left = false) {
  s = String(s);
  return left ? s.padStart(n) : s.padEnd(n);
}

// ---------------------------------------------------------------- main

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (!existsSync(GNU_TIME)) throw new Error(`${GNU_TIME} (GNU time) is missing: apt-get install time`);
  mkdirSync(OUT, { recursive: true });
  console.log(`amitools benchmark — node ${process.version}, ${spawnSync('nproc').stdout.toString().trim()} CPUs, ${load()}`);
  console.log('Absolute figures drift on shared machines: compare the ratios, measured side by side in one run.');

  if (o.gzip) await gzipStage(o);

  if (o.bundle) {
    const results = [];
    for (const kind of o.images) {
      process.stdout.write(`\nPreparing the ${kind === 'os' ? 'OS' : 'synthetic'} image (cached after the first run)... `);
      const image = kind === 'os' ? ensureOsImage() : await ensureSyntheticImage(o.size);
      console.log(image);
      results.push(await benchImage(kind, image, o));
    }
    console.log('\nSummary (markdown, for the README):\n');
    console.log(summaryTable(results));
    console.log(`\nfinished, ${load()}`);
  }
}

/** Allocated bytes: what tar -S stores of a sparse image, and what there is to compress. */
const dataBytes = (path) => Math.min(statSync(path).size, statSync(path).blocks * 512);
const bundleSize = (dir) => readdirSync(dir).filter((f) => f.includes('.part.')).reduce((a, f) => a + statSync(join(dir, f)).size, 0);

async function benchImage(kind, image, o) {
  const name = image.split('/').pop();
  const bytes = dataBytes(image);
  const imageSha1 = await sha1OfFile(image);
  const keyHex = randomBytes(16).toString('hex');
  const ivHex = randomBytes(16).toString('hex');
  // Unbundled images (and the floor's copy) go to --unbundle-to, e.g. a tmpfs, to take the disk out of the race.
  const dir = (tag) => join(/unbundled|floor/.test(tag) ? o.unbundleTo : OUT, `${kind}-${tag}`);
  const contenders = [
    { key: 'ours', label: 'bundle  ours, default level', run: () => bundleOurs(image, dir('ours')) },
    { key: 'ours9', label: 'bundle  ours, level 9', run: () => bundleOurs(image, dir('ours9'), 9) },
    { key: 'gzip9', label: 'bundle  tar|gzip -9|openssl; split; sha1sum', run: () => bundleTools(image, dir('gzip9'), 'gzip -9', keyHex, ivHex) },
    { key: 'pigz6', label: 'bundle  tar|pigz -6|openssl; split; sha1sum', run: () => bundleTools(image, dir('pigz6'), 'pigz -6', keyHex, ivHex) },
    { key: 'unOurs', label: 'unbundle ours (ec2-unbundle)', run: () => unbundleOurs(dir('ours'), dir('unbundled-ours')) },
    { key: 'unTools', label: 'unbundle cat|openssl -d|gunzip|tar -x', run: () => unbundleTools(dir('ours'), dir('unbundled-tools')) },
    { key: 'floor', label: 'floor: cp --sparse=always (the writes alone)', run: () => writeFloor(image, dir('floor')) },
  ];
  const best = new Map();
  for (let i = 0; i < o.runs; i++) {
    for (const c of contenders) {
      // Untimed: what the previous contender left to write back to disk is written now, not during this one.
      spawnSync('sync');
      const r = await c.run();
      if (!best.has(c.key) || r.seconds < best.get(c.key).seconds) best.set(c.key, r);
      if (c.key === 'floor') rmSync(dir('floor'), { recursive: true, force: true });
      if (c.key === 'unOurs' || c.key === 'unTools') {
        if (o.verify && i === 0) await expectSameFile(join(dir(c.key === 'unOurs' ? 'unbundled-ours' : 'unbundled-tools'), name), imageSha1, c.label);
        rmSync(dir(c.key === 'unOurs' ? 'unbundled-ours' : 'unbundled-tools'), { recursive: true, force: true });
      }
    }
    if (o.verify && i === 0) {
      for (const tag of ['ours', 'ours9']) {
        await openOursWithTools(dir(tag), dir('opened'));
        await expectSameFile(join(dir('opened'), name), imageSha1, `our ${tag} bundle opened with openssl|gunzip|tar`);
        rmSync(dir('opened'), { recursive: true, force: true });
      }
    }
  }
  for (const tag of ['ours', 'ours9', 'gzip9', 'pigz6']) best.get(tag).size = bundleSize(dir(tag));

  console.log(`\n${kind === 'os' ? 'OS image' : 'Synthetic image'} ${name}: ${(statSync(image).size / MiB).toFixed(0)} MiB, ${(bytes / 1e6).toFixed(0)} MB of data; best of ${o.runs} run(s)`);
  console.log('MB/s = MB of data / seconds; CPU s: user + sys of every process; RSS: largest process (GNU time %M) / sum of the stages running together');
  console.log(pad('', 46) + pad('seconds', 9, true) + pad('MB/s', 9, true) + pad('CPU s', 8, true) + pad('RSS MiB', 9, true) + pad('sum MiB', 9, true) + pad('bundle MB', 11, true));
  for (const c of contenders) {
    const r = best.get(c.key);
    console.log(pad(c.label, 46) + pad(r.seconds.toFixed(2), 9, true) + pad((bytes / 1e6 / r.seconds).toFixed(1), 9, true) + pad(r.cpu.toFixed(1), 8, true)
      + pad(r.rssMiB.toFixed(0), 9, true) + pad(r.sumMiB.toFixed(0), 9, true) + pad(r.size ? (r.size / 1e6).toFixed(1) : '', 11, true) + (r.note ? `   ${r.note}` : ''));
  }
  const g = best.get('gzip9');
  for (const key of ['ours', 'ours9', 'pigz6']) {
    const r = best.get(key);
    console.log(`${pad(key, 6)} vs gzip -9 pipeline: ${(g.seconds / r.seconds).toFixed(2)}× the throughput, ${(g.cpu / r.cpu).toFixed(2)}× less CPU, bundle ${((r.size / g.size - 1) * 100).toFixed(2)}% larger`);
  }
  const un = best.get('unOurs');
  const unT = best.get('unTools');
  console.log(`unbundle ours vs the reverse pipeline: ${(unT.seconds / un.seconds).toFixed(2)}× the throughput, ${(unT.cpu / un.cpu).toFixed(2)}× less CPU`);
  const fl = best.get('floor');
  console.log(`writing the image's data alone (cp --sparse=always) takes ${fl.seconds.toFixed(2)} s: ${(100 * fl.seconds / un.seconds).toFixed(0)}% of our unbundle, ${(100 * fl.seconds / unT.seconds).toFixed(0)}% of the reverse pipeline`);
  if (o.verify) console.log('verified (first run): both unbundles give the image back; our bundles (default level and 9) open with openssl | gunzip | tar');
  if (o.levels) await levelsOf(image, name, g.size);
  if (!o.keep) for (const tag of ['ours', 'ours9', 'gzip9', 'pigz6']) rmSync(dir(tag), { recursive: true, force: true });
  return { kind, name, bytes, best, runs: o.runs };
}

/** Our tar stream through the parallel gzip at each level, in this process: wall and CPU seconds, size. */
async function levelsOf(image, name, gzip9Size) {
  const { createTarPack, describeImage } = await import(join(ROOT, 'dist', 'stream', 'tar-pack.js'));
  const { createParallelGzip } = await import(join(ROOT, 'dist', 'stream', 'gzip-parallel.js'));
  const source = await describeImage(image, name);
  console.log(`\nEach level, ${name}'s tar stream through our parallel gzip (every core); size against the gzip -9 pipeline's bundle`);
  console.log(pad('level', 8) + pad('seconds', 9, true) + pad('CPU s', 8, true) + pad('MB', 9, true) + pad('vs gzip -9', 12, true));
  for (let level = 1; level <= 9; level++) {
    let out = 0;
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    await pipeline(createTarPack(source), createParallelGzip({ level }), new Writable({ write(c, _e, cb) { out += c.length; cb(); } }));
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = process.cpuUsage(cpu0);
    console.log(pad(level, 8) + pad(seconds.toFixed(1), 9, true) + pad(((cpu.user + cpu.system) / 1e6).toFixed(1), 8, true)
      + pad((out / 1e6).toFixed(1), 9, true) + pad(`${out >= gzip9Size ? '+' : ''}${((out / gzip9Size - 1) * 100).toFixed(2)}%`, 12, true));
  }
}

function summaryTable(results) {
  const lines = [
    '| image | contender | seconds | MB/s | CPU s | peak RSS MiB | bundle MB | vs gzip -9 pipeline |',
    '|---|---|--:|--:|--:|--:|--:|---|',
  ];
  for (const { kind, bytes, best } of results) {
    const g = best.get('gzip9');
    const label = kind === 'os' ? `OS, ${(bytes / 1e6).toFixed(0)} MB` : `synthetic, ${(bytes / 1e6).toFixed(0)} MB`;
    const row = (name, r, vs) => lines.push(`| ${label} | ${name} | ${r.seconds.toFixed(1)} | ${(bytes / 1e6 / r.seconds).toFixed(0)} | ${r.cpu.toFixed(1)} | ${r.rssMiB.toFixed(0)}${r.sumMiB > r.rssMiB + 0.5 ? ` (${r.sumMiB.toFixed(0)} all)` : ''} | ${r.size ? (r.size / 1e6).toFixed(1) : ''} | ${vs} |`);
    const vs = (r) => `${(g.seconds / r.seconds).toFixed(1)}× faster, ${r.size >= g.size ? '+' : ''}${((r.size / g.size - 1) * 100).toFixed(1)}% size`;
    row('bundle: ours, level 6 (default)', best.get('ours'), vs(best.get('ours')));
    row('bundle: ours, level 9', best.get('ours9'), vs(best.get('ours9')));
    row('bundle: tar \\| gzip -9 \\| openssl; split; sha1sum', g, '1×');
    row('bundle: tar \\| pigz -6 \\| openssl; split; sha1sum', best.get('pigz6'), vs(best.get('pigz6')));
    const unT = best.get('unTools');
    row('unbundle: ours', best.get('unOurs'), `${(unT.seconds / best.get('unOurs').seconds).toFixed(1)}× the reverse pipeline`);
    row('unbundle: cat \\| openssl -d \\| gunzip \\| tar -x', unT, '');
    row('floor: cp --sparse=always (the writes alone)', best.get('floor'), `${(100 * best.get('floor').seconds / best.get('unOurs').seconds).toFixed(0)}% of our unbundle's time`);
  }
  return lines.join('\n');
}

main().catch((err) => {
  console.error(`bench failed: ${err.message}`);
  process.exit(1);
});
