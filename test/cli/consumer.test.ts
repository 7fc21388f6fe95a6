// Must show (issue 9): amitools is an importable library. A scratch package installs the packed tarball, imports it
// from TypeScript (type-checked by tsc) and round-trips an image; importing a command module runs nothing.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { scratch } from '../helpers/bundles.js';
import { pseudoRandomChunks, sha1File } from '../helpers/images.js';
import { ROOT, key } from '../helpers/paths.js';
import { runProcess } from '../helpers/run.js';

const work = scratch('consumer');
afterAll(work.cleanup);
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

describe('the library, as a dependency', () => {
  it('installs from the packed tarball, type-checks, and round-trips an image', async () => {
    const packed = execFileSync('npm', ['pack', '--silent', '--ignore-scripts', '--pack-destination', work.dir], { cwd: ROOT, encoding: 'utf8' }).trim().split('\n').pop()!;
    const app = join(work.dir, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module', dependencies: { amitools: `file:../${packed}` } }));
    const install = await runProcess('npm', ['install', '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund'], { cwd: app });
    expect(install.stderr.replace(/npm warn .*\n/gi, '')).toBe('');
    expect(install.code).toBe(0);

    writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, skipLibCheck: false, types: ['node'], typeRoots: [join(ROOT, 'node_modules', '@types')] },
      files: ['consumer.ts'],
    }));
    const image = join(work.dir, 'disk.img');
    writeFileSync(image, Buffer.concat([...pseudoRandomChunks('consumer', 12 << 20)]));
    writeFileSync(join(app, 'consumer.ts'), `
import { mkdirSync } from 'node:fs';
import { bundleImage, unbundle, DirectoryStore, type BundleResult } from 'amitools';
const [image, out, keys] = process.argv.slice(2) as [string, string, string];
mkdirSync(out + '/bundle'); mkdirSync(out + '/image');
const store = new DirectoryStore(out + '/bundle');
const r: BundleResult = await bundleImage({ image, store, user: '123456789012', arch: 'x86_64',
  userCertPath: keys + '/user-cert.pem', userKeyPath: keys + '/user-key.pem', ec2CertPath: keys + '/ec2-cert.pem' });
const { files } = await unbundle({ manifest: { name: r.manifestName }, store, privateKeyPath: keys + '/user-key.pem', destination: out + '/image' });
console.log(JSON.stringify({ parts: r.manifest.parts.length, files }));
`);
    const check = await runProcess(process.execPath, [TSC, '--noEmit', '-p', app]);
    expect(check.stdout + check.stderr).toBe('');
    expect(check.code).toBe(0);
    // Bad types are caught: the check is not vacuous.
    writeFileSync(join(app, 'wrong.ts'), "import { bundleImage } from 'amitools';\nawait bundleImage({ image: 1 });\n");
    const wrong = await runProcess(process.execPath, [TSC, '--noEmit', '--strict', '--module', 'NodeNext', '--moduleResolution', 'NodeNext', '--target', 'ES2022', join(app, 'wrong.ts')]);
    expect(wrong.code).not.toBe(0);

    const built = await runProcess(process.execPath, [TSC, '-p', app, '--outDir', join(app, 'out')]);
    expect(built.code).toBe(0);
    const outDir = join(work.dir, 'run');
    mkdirSync(outDir);
    const run = await runProcess(process.execPath, [join(app, 'out', 'consumer.js'), image, outDir, join(key('user-key.pem'), '..')]);
    expect(run.stderr).toBe('');
    expect(JSON.parse(run.stdout)).toEqual({ parts: 2, files: [join(outDir, 'image', 'disk.img')] });
    expect(sha1File(join(outDir, 'image', 'disk.img'))).toBe(sha1File(image));
  });

  it('importing a command module runs nothing until main() is called', async () => {
    const modules = readdirSync(join(ROOT, 'dist', 'cli')).filter((f) => f.endsWith('.js'));
    expect(modules.length).toBeGreaterThan(8);
    const script = `for (const m of ${JSON.stringify(modules)}) await import(${JSON.stringify(join(ROOT, 'dist', 'cli'))} + '/' + m); console.log('imported');`;
    const r = await runProcess(process.execPath, ['--input-type=module', '-e', script], { input: '' });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('imported\n');
    expect(r.code).toBe(0);
  });
});
