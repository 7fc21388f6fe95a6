// Hostile local and remote inputs for the readers of parts and manifests: bounded reads, regular files only, a
// hostile S3 stand-in, a closed stdout, option values kept out of messages. Each refusal: exit 254, one line on
// stderr, nothing left in the destination, nothing written outside it.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { appendFileSync, copyFileSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { Readable } from 'node:stream';
import { ROOT, key, reference } from '../helpers/paths.js';
import { runCli, runProcess, type RunResult } from '../helpers/run.js';
import { scratch } from '../helpers/bundles.js';
import { runCliMeasured } from '../helpers/peak-rss.js';
import { startS3rver, type S3rver } from '../helpers/s3rver.js';
import { startFaultProxy, objectRequests, type FaultProxy } from '../helpers/fault-proxy.js';
import { checkClient, listKeys } from '../helpers/s3-fixture.js';
import { sha1File } from '../helpers/images.js';

const MiB = 1 << 20;
const PARTS = ['multipart.img.part.0', 'multipart.img.part.1', 'multipart.img.part.2'];
const MANIFEST = 'multipart.img.manifest.xml';
const manifestXml = readFileSync(reference('multipart', MANIFEST), 'utf8');
const partSize = (i: number) => lstatSync(reference('multipart', PARTS[i])).size;

let server: S3rver;
let proxy: FaultProxy;
const work = scratch('hostile-io');
const env = { AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '', AWS_PROFILE: 'amitools-test-none' };
const s3 = () => ['--url', proxy.url, '-a', 'S3RVER', '-s', 'S3RVER', '--batch'];

beforeAll(async () => {
  server = await startS3rver();
  proxy = await startFaultProxy(server.url);
});
afterAll(async () => {
  await proxy?.stop();
  await server?.stop();
  work.cleanup();
});
beforeEach(() => { proxy.log.length = 0; proxy.rule = undefined; proxy.canned = undefined; });

/** A case directory holding `src/` (a copy of the 3-part reference bundle) and an empty `out/`. */
let n = 0;
function caseDir(): { dir: string; src: string; out: string; manifest: string } {
  const dir = join(work.dir, `case${n++}`);
  const src = join(dir, 'src');
  const out = join(dir, 'out');
  mkdirSync(src, { recursive: true });
  mkdirSync(out);
  for (const f of [MANIFEST, ...PARTS]) copyFileSync(reference('multipart', f), join(src, f));
  return { dir, src, out, manifest: join(src, MANIFEST) };
}

/**
 * `dir` and every entry under it with type, size and mtime: what "nothing written outside the destination" is
 * checked against. The destination's own mtime may change (a temporary file made and removed there).
 */
function snapshot(dir: string, destination = 'out'): string[] {
  const entries: string[] = [];
  const add = (p: string) => {
    const st = lstatSync(p);
    const rel = relative(dir, p) || '.';
    const type = st.isSymbolicLink() ? 'l' : st.isDirectory() ? 'd' : st.isFIFO() ? 'p' : 'f';
    entries.push(`${rel} ${type} ${st.size}${rel === destination ? '' : ` ${st.mtimeMs}`}`);
    if (st.isDirectory()) for (const name of readdirSync(p).sort()) add(join(p, name));
  };
  add(dir);
  return entries;
}

/** Exit 254, exactly one line on stderr matching `pattern`, no stack trace. */
function expectRefused(r: RunResult, pattern: RegExp): void {
  expect(r.stderr.trimEnd().split('\n'), r.stderr).toHaveLength(1);
  expect(r.stderr).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  expect(r.code).toBe(254);
}

const unbundleArgs = (c: { src: string; out: string }, manifest = join(c.src, MANIFEST)) =>
  ['-m', manifest, '-k', key('user-key.pem'), '-s', c.src, '-d', c.out, '--batch'];

describe('local parts: regular files of the length bundled_size gives them', () => {
  it('unbundle refuses a part symlinked to /dev/zero at once, under a 200 MB RSS limit', async () => {
    const c = caseDir();
    rmSync(join(c.src, PARTS[1]));
    symlinkSync('/dev/zero', join(c.src, PARTS[1]));
    const before = snapshot(c.dir);
    const r = await runCliMeasured('ec2-unbundle', unbundleArgs(c), { limitMiB: 200, timeoutMs: 60_000 });
    expect(r.killed).toBeUndefined();
    expect(r.peakRssMiB).toBeGreaterThan(0);
    expect(r.peakRssMiB).toBeLessThan(200);
    expectRefused(r, /^ERROR: part .*\/src\/multipart\.img\.part\.1 is a character device, not a regular file/);
    expect(snapshot(c.dir)).toEqual(before);
    expect(readdirSync(c.out)).toEqual([]);
  });

  it('unbundle refuses a FIFO part without waiting for a writer', async () => {
    const c = caseDir();
    rmSync(join(c.src, PARTS[1]));
    execFileSync('mkfifo', [join(c.src, PARTS[1])]);
    const before = snapshot(c.dir);
    const r = await runCliMeasured('ec2-unbundle', unbundleArgs(c), { limitMiB: 200, timeoutMs: 30_000 });
    expect(r.killed).toBeUndefined();
    expectRefused(r, /^ERROR: part .*multipart\.img\.part\.1 is a FIFO, not a regular file/);
    expect(snapshot(c.dir)).toEqual(before);
  });

  it('unbundle refuses a part longer or shorter than bundled_size makes it, naming it', async () => {
    const c = caseDir();
    appendFileSync(join(c.src, PARTS[2]), 'x');
    const before = snapshot(c.dir);
    const long = await runCli('ec2-unbundle', unbundleArgs(c));
    expectRefused(long, new RegExp(`^ERROR: part .*multipart\\.img\\.part\\.2 is ${partSize(2) + 1} bytes long, but the manifest's bundled_size makes it ${partSize(2)} bytes`));
    expect(snapshot(c.dir)).toEqual(before);

    const d = caseDir();
    truncateSync(join(d.src, PARTS[0]), partSize(0) - 16);
    const short = await runCli('ec2-unbundle', unbundleArgs(d));
    expectRefused(short, new RegExp(`^ERROR: part .*multipart\\.img\\.part\\.0 is ${partSize(0) - 16} bytes long, but the manifest's bundled_size makes it ${10 * MiB} bytes`));
    expect(readdirSync(d.out)).toEqual([]);
  });

  it('a manifest whose bundled_size does not fit its part count or its size is refused', async () => {
    const c = caseDir();
    const bundled = Number(/<bundled_size>(\d+)</.exec(manifestXml)![1]);
    const cases: [string, string, RegExp][] = [
      ['more.xml', manifestXml.replace(`<bundled_size>${bundled}<`, `<bundled_size>${bundled + 10 * MiB}<`), /makes 4 parts of 10485760 bytes, but the manifest lists 3/],
      ['odd.xml', manifestXml.replace(`<bundled_size>${bundled}<`, `<bundled_size>${bundled - 1}<`), /is not a length of AES-128-CBC ciphertext/],
      ['size.xml', manifestXml.replace(/<size>\d+</, '<size>4096<'), /is more than an image of <size> 4096 can bundle to/],
    ];
    for (const [name, xml, pattern] of cases) {
      writeFileSync(join(c.src, name), xml);
      const r = await runCli('ec2-unbundle', unbundleArgs(c, join(c.src, name)));
      expectRefused(r, pattern);
      expect(r.stderr).toMatch(/^ERROR: Invalid manifest '.*\.xml': <bundled_size>/);
    }
    expect(readdirSync(c.out)).toEqual([]);
  });

  for (const kind of ['FIFO', '/dev/zero'] as const) {
    it(`upload refuses a ${kind} part before any request`, async () => {
      const c = caseDir();
      rmSync(join(c.src, PARTS[1]));
      if (kind === 'FIFO') execFileSync('mkfifo', [join(c.src, PARTS[1])]);
      else symlinkSync('/dev/zero', join(c.src, PARTS[1]));
      const r = await runCliMeasured('ec2-upload-bundle', ['-b', 'up-special', '-m', c.manifest, ...s3()], { env, limitMiB: 200, timeoutMs: 30_000 });
      expect(r.killed).toBeUndefined();
      expectRefused(r, new RegExp(`^ERROR: part .*multipart\\.img\\.part\\.1 is a ${kind === 'FIFO' ? 'FIFO' : 'character device'}, not a regular file`));
      expect(proxy.log).toEqual([]);
    });
  }

  it('upload refuses a part longer than bundled_size makes it, before any request', async () => {
    const c = caseDir();
    appendFileSync(join(c.src, PARTS[2]), Buffer.alloc(MiB));
    const r = await runCli('ec2-upload-bundle', ['-b', 'up-long', '-m', c.manifest, ...s3()], { env });
    expectRefused(r, new RegExp(`^ERROR: part .*multipart\\.img\\.part\\.2 is ${partSize(2) + MiB} bytes long, but the manifest's bundled_size makes it ${partSize(2)} bytes`));
    expect(proxy.log).toEqual([]);
  });
});

describe('ec2-download-bundle against a hostile S3 stand-in', () => {
  const bucket = 'hostile';
  const zeros = (total: number) => () => Readable.from((function* () { for (let i = 0; i < total; i += MiB) yield Buffer.alloc(MiB); })());
  /** The proxy serves `xml` as the manifest and `part(name)` for part GETs (undefined: 404 from s3rver). */
  function serve(xml: string | Buffer | (() => Readable), part?: (name: string) => ReturnType<NonNullable<FaultProxy['canned']>>) {
    proxy.canned = (q) => {
      if (q.method !== 'GET') return undefined;
      if (q.path === `/${bucket}/p/${MANIFEST}`) return { status: 200, body: xml };
      return part?.(q.path.slice(`/${bucket}/p/`.length));
    };
  }
  const download = (dir: string) => runCli('ec2-download-bundle', ['-b', `${bucket}/p`, '-p', 'multipart.img', '-d', dir, ...s3(), '--concurrency', '1'], { env });
  const partGets = () => objectRequests(proxy.log, 'GET', bucket).filter((q) => q.path.includes('.part.'));

  it('stops reading a part body longer than the manifest allows, once, naming the part', async () => {
    const c = caseDir();
    const before = snapshot(c.dir);
    // 200 MiB, chunked (no Content-Length), for a part of 10 MiB.
    serve(manifestXml, () => ({ status: 200, body: zeros(200 * MiB), headers: { 'content-type': 'application/octet-stream' } }));
    const r = await download(c.out);
    expectRefused(r, /^ERROR: part multipart\.img\.part\.0 \(s3:\/\/hostile\/p\/multipart\.img\.part\.0\) is over 10485760 bytes long, but the manifest's bundled_size makes it 10485760 bytes/);
    const gets = partGets();
    expect(gets).toHaveLength(1);
    // Socket buffers let the stand-in push a little past the cap before the connection is closed; never the 200 MiB.
    expect(gets[0].sentBytes).toBeLessThan(10 * MiB + 16 * MiB);
    expect(readdirSync(c.out)).toEqual([]);
    expect(snapshot(c.dir)).toEqual(before);
  });

  it('refuses a part whose Content-Length is over the cap without reading the body', async () => {
    const c = caseDir();
    serve(manifestXml, (name) => ({ status: 200, body: zeros(200 * MiB), headers: { 'content-type': 'application/octet-stream', 'content-length': String(200 * MiB) } }));
    const r = await download(c.out);
    expectRefused(r, /^ERROR: part multipart\.img\.part\.0 \(s3:\/\/hostile\/p\/multipart\.img\.part\.0\) is 209715200 bytes long, but the manifest's bundled_size makes it 10485760 bytes/);
    expect(partGets()).toHaveLength(1);
    expect(readdirSync(c.out)).toEqual([]);
  });

  it('refuses a manifest body over 1 MiB', async () => {
    const c = caseDir();
    serve(zeros(64 * MiB));
    const r = await download(c.out);
    expectRefused(r, /^ERROR: s3:\/\/hostile\/p\/multipart\.img\.manifest\.xml is over 1048576 bytes: not a manifest/);
    expect(objectRequests(proxy.log, 'GET', bucket)).toHaveLength(1);
    expect(proxy.log[0].sentBytes).toBeLessThan(17 * MiB);
    expect(readdirSync(c.out)).toEqual([]);
  });

  for (const name of ['.bashrc', '.', '..']) {
    it(`refuses a manifest naming a part '${name}' before any part request; an existing dotfile is kept`, async () => {
      const c = caseDir();
      writeFileSync(join(c.out, '.bashrc'), 'mine\n');
      const before = snapshot(c.dir);
      serve(manifestXml.replace(`<filename>${PARTS[1]}</filename>`, `<filename>${name}</filename>`),
        () => ({ status: 200, body: 'hostile\n', headers: { 'content-type': 'application/octet-stream' } }));
      const r = await download(c.out);
      expectRefused(r, new RegExp(`^ERROR: Invalid manifest 's3://hostile/p/multipart\\.img\\.manifest\\.xml': .*'${name.replace(/\./g, '\\.')}' is not a plain file name`));
      expect(partGets()).toEqual([]);
      expect(readFileSync(join(c.out, '.bashrc'), 'utf8')).toBe('mine\n');
      expect(snapshot(c.dir)).toEqual(before);
    });
  }
});

describe('a closed stdout is not an error of the job', () => {
  /** Runs `node bin/<cmd>.js args | <reader>` in bash; the command's own exit code and stderr. */
  async function piped(cmd: string, args: string[], reader: string): Promise<RunResult> {
    const errFile = join(work.dir, `stderr-${n++}`);
    const r = await runProcess('bash', ['-c', `"$0" "$@" 2>"$ERRFILE" | ${reader}; exit "\${PIPESTATUS[0]}"`, process.execPath, join(ROOT, 'bin', `${cmd}.js`), ...args],
      { env: { ...env, ERRFILE: errFile } });
    return { code: r.code, stdout: r.stdout, stderr: readFileSync(errFile, 'utf8') };
  }
  const readers = ['head -1', 'true'];

  for (const reader of readers) {
    it(`ec2-bundle-image | ${reader}: completes, no stack trace`, async () => {
      const c = caseDir();
      const image = join(c.dir, 'img');
      execFileSync('bash', ['-c', `head -c ${25 * MiB} /dev/urandom > "${image}"`]);
      const r = await piped('ec2-bundle-image', ['-i', image, '-c', key('user-cert.pem'), '-k', key('user-key.pem'), '-u', '123456789012',
        '-r', 'x86_64', '--ec2cert', key('ec2-cert.pem'), '-d', c.out, '--batch'], reader);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(readdirSync(c.out).sort()).toEqual(['img.manifest.xml', 'img.part.0', 'img.part.1', 'img.part.2']);
      if (reader === 'head -1') expect(r.stdout).toBe('Bundling image file...\n');
    });

    it(`ec2-unbundle | ${reader}: completes, no stack trace`, async () => {
      const c = caseDir();
      const r = await piped('ec2-unbundle', unbundleArgs(c), reader);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(readdirSync(c.out)).toEqual(['multipart.img']);
    });

    it(`ec2-upload-bundle and ec2-download-bundle | ${reader}: complete, no stack trace`, async () => {
      const c = caseDir();
      const b = `piped-${reader === 'true' ? 'true' : 'head'}`;
      const up = await piped('ec2-upload-bundle', ['-b', `${b}/x`, '-m', c.manifest, ...s3()], reader);
      expect(up.stderr).toBe('');
      expect(up.code).toBe(0);
      expect((await listKeys(checkClient(server.url), b)).sort()).toEqual([MANIFEST, ...PARTS].map((f) => `x/${f}`).sort());
      const down = await piped('ec2-download-bundle', ['-b', `${b}/x`, '-p', 'multipart.img', '-d', c.out, ...s3()], reader);
      expect(down.stderr).toBe('');
      expect(down.code).toBe(0);
      expect(readdirSync(c.out).sort()).toEqual([MANIFEST, ...PARTS]);
      for (const f of readdirSync(c.out)) expect(sha1File(join(c.out, f))).toBe(sha1File(join(c.src, f)));
    });
  }
});

describe('messages', () => {
  it('an unknown option is named without its value', async () => {
    for (const [cmd, arg] of [['ec2-upload-bundle', '--secretz=hunter2'], ['ec2-download-bundle', '--secrets=hunter2'], ['ec2-unbundle', '-Zhunter2']]) {
      const r = await runCli(cmd, [arg]);
      expect(r.code).toBe(1);
      expect(r.stderr).not.toContain('hunter2');
      expect(r.stderr).toMatch(new RegExp(`^unknown option '${arg.replace(/=.*/, '').slice(0, arg.startsWith('--') ? undefined : 2)}'`));
    }
  });

  it('--part at or beyond the part count is refused, before any request', async () => {
    const c = caseDir();
    for (const part of ['3', '12']) {
      const r = await runCli('ec2-upload-bundle', ['-b', 'part-beyond', '-m', c.manifest, '--part', part, ...s3()], { env });
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(`--part has invalid value '${part}': the bundle has 3 parts, numbered 0 to 2\nTry 'ec2-upload-bundle --help'\n`);
    }
    expect(proxy.log).toEqual([]);
  });

  const bundleArgs = (out: string, extra: string[] = []) => ['-i', reference('tiny', 'tiny.img'), '-c', key('user-cert.pem'), '-k', key('user-key.pem'),
    '-u', '123456789012', '-r', 'x86_64', '--ec2cert', key('ec2-cert.pem'), '-d', out, '--batch', ...extra];

  it('a directory where the manifest goes: a sentence naming the file, not EISDIR', async () => {
    const c = caseDir();
    mkdirSync(join(c.out, 'tiny.img.manifest.xml'));
    const r = await runCli('ec2-bundle-image', bundleArgs(c.out));
    expectRefused(r, /^ERROR: cannot [a-z]+ .*\/out\/tiny\.img\.manifest\.xml: [^(]*directory[^(]* \(EISDIR\); /);
  });

  it('a part name too long for the file system: a sentence, not ENAMETOOLONG', async () => {
    const c = caseDir();
    const r = await runCli('ec2-bundle-image', bundleArgs(c.out, ['-p', 'x'.repeat(250)]));
    expectRefused(r, /^ERROR: cannot [a-z]+ .*\/out\/x{250}\.part\.0: the name is too long for the file system \(ENAMETOOLONG\); use a shorter name or path; nothing was left under a final name\n$/);
  });

  it('the file size limit (ulimit -f): a sentence naming the part, not EFBIG', async () => {
    const c = caseDir();
    const r = await runProcess('prlimit', [`--fsize=${MiB / 2}`, '--', process.execPath, join(ROOT, 'bin', 'ec2-bundle-image.js'), ...bundleArgs(c.out)]);
    expectRefused(r, /^ERROR: cannot write .*\/out\/tiny\.img\.part\.0: the file would be larger than the file system or the file size limit \(ulimit -f\) allows \(EFBIG\); /);
  });
});
