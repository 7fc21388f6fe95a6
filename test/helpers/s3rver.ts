import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './paths.js';

export interface S3rver {
  url: string;            // http://127.0.0.1:PORT
  port: number;
  directory: string;
  accessKey: string;
  secretKey: string;
  stop(): Promise<void>;
}

/** s3rver as a child process (its own event loop) on 127.0.0.1, a random port, a fresh data directory; HTTPS with `tls`. */
export async function startS3rver(tls?: { key: string; cert: string }): Promise<S3rver> {
  const directory = await mkdtemp(join(tmpdir(), 's3rver-'));
  const child: ChildProcess = spawn(process.execPath, [
    '--openssl-legacy-provider', join(ROOT, 'node_modules', 's3rver', 'bin', 's3rver.js'),
    '-d', directory, '-a', '127.0.0.1', '-p', '0', '--silent', ...(tls ? ['--key', tls.key, '--cert', tls.cert] : []),
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`s3rver did not start: ${out}`)), 20_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /listening on [\d.]+:(\d+)/.exec(out);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`s3rver exited (${code}): ${out}`)); });
  });
  child.stdout!.resume();
  child.stderr!.resume();
  return {
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`, port, directory, accessKey: 'S3RVER', secretKey: 'S3RVER',
    async stop() {
      if (child.exitCode === null) {
        const gone = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await gone;
      }
      await rm(directory, { recursive: true, force: true });
    },
  };
}
