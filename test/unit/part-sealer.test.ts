// PartSealer: AES-128-CBC and 10 MiB parts with their SHA-1, from a worker thread, into a part writer.
import { afterAll, describe, expect, it } from 'vitest';
import { createCipheriv, createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { temporaryOwner } from '../../src/stream/atomic-write.js';
import { DirectoryStore } from '../../src/store/directory-store.js';
import { PartSealer } from '../../src/store/part-sealer.js';
import { ROOT, key } from '../helpers/paths.js';
import { runNodeScript } from '../helpers/run.js';

const MiB = 1024 * 1024;
const tmp = mkdtempSync(join(tmpdir(), 'amitools-sealer-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const fresh = () => { const d = join(tmp, `d${n++}`); mkdirSync(d); return d; };
const ls = (d: string) => readdirSync(d).sort();

describe('PartSealer into a directory store (a staged group)', () => {
  const sealing = { key: Buffer.alloc(16, 7), iv: Buffer.alloc(16, 9) };
  it('leaves nothing when the stream fails in the middle of a part', async () => {
    const d = fresh();
    const writer = new DirectoryStore(d).createWriter({ prefix: 'img', maxParts: 3 });
    const chunker = new PartSealer(writer, sealing);
    async function* source() {
      for (let i = 0; i < 15; i++) yield Buffer.alloc(MiB, i);
      throw new Error('disk gone');
    }
    await expect(pipeline(Readable.from(source()), chunker)).rejects.toThrow('disk gone');
    // Part 0 may have been written, under a temporary name; part 1 was still in memory.
    expect(ls(d).length).toBeLessThanOrEqual(1);
    expect(ls(d).every((f) => temporaryOwner(f) === process.pid)).toBe(true);
    await writer.abort();
    expect(ls(d)).toEqual([]);
  });

  it('gives what createCipheriv gives, whatever the sizes written, with parts in flight', async () => {
    const d = fresh();
    const writer = new DirectoryStore(d).createWriter({ prefix: 'img', maxParts: 12 });
    const sealer = new PartSealer(writer, { ...sealing, inFlight: 3 });
    // Odd-sized writes that cross blocks, slices and parts.
    const chunks = Array.from({ length: 60 }, (_, i) => Buffer.alloc(((i * 7919) % 1_500_000) + 1, i));
    await pipeline(Readable.from(chunks), sealer);
    const names = sealer.parts.map((_, i) => `img.part.${i}`);
    await writer.commit(names);
    const cipher = createCipheriv('aes-128-cbc', sealing.key, sealing.iv);
    const expected = Buffer.concat([...chunks.map((c) => cipher.update(c)), cipher.final()]);
    // equals(): toEqual walks 14 MB byte by byte for minutes.
    expect(Buffer.concat(names.map((n) => readFileSync(join(d, n)))).equals(expected)).toBe(true);
    expect(sealer.parts.map((p) => p.sha1)).toEqual(names.map((n) => createHash('sha1').update(readFileSync(join(d, n))).digest('hex')));
  });

  it('a part the writer refuses fails the stream, and nothing is left after the abort', async () => {
    const d = fresh();
    const writer = new DirectoryStore(d).createWriter({ prefix: 'img', maxParts: 12 });
    const refusing = Object.assign(Object.create(writer) as typeof writer, {
      putPart: (index: number, data: Buffer, sums: { sha1: string }) => (index === 1 ? Promise.reject(new Error('store full')) : writer.putPart(index, data, sums)),
    });
    const sealer = new PartSealer(refusing, sealing);
    await expect(pipeline(Readable.from(Array.from({ length: 40 }, () => Buffer.alloc(MiB, 3))), sealer)).rejects.toThrow('store full');
    await writer.abort();
    expect(ls(d)).toEqual([]);
  });

  it('names the parts by the digit rule at the end; the commit renames them, the manifest last', async () => {
    const d = fresh();
    const writer = new DirectoryStore(d).createWriter({ prefix: 'img', maxParts: 12 });
    const chunker = new PartSealer(writer, sealing);
    const plain = Buffer.alloc(25 * MiB, 1);
    await pipeline(Readable.from([plain]), chunker);
    // AES-128-CBC with its padding block, cut at 10 MiB, each part's SHA-1 of what it holds.
    const cipher = createCipheriv('aes-128-cbc', sealing.key, sealing.iv);
    const sealed = Buffer.concat([cipher.update(plain), cipher.final()]);
    expect(chunker.parts.map((p) => p.size)).toEqual([10 * MiB, 10 * MiB, 5 * MiB + 16]);
    expect(chunker.parts.map((p) => p.sha1)).toEqual([0, 1, 2].map((i) => createHash('sha1').update(sealed.subarray(i * 10 * MiB, (i + 1) * 10 * MiB)).digest('hex')));
    expect(ls(d).some((f) => f.startsWith('img.'))).toBe(false);
    await writer.commit(['img.part.0', 'img.part.1', 'img.part.2'], { name: 'img.manifest.xml', data: Buffer.from('<m/>') });
    expect(ls(d)).toEqual(['img.manifest.xml', 'img.part.0', 'img.part.1', 'img.part.2']);
  });
});

// Its worker must never keep a process alive on its own, as a command's exit depends on it.

function runScript(body: string): Promise<{ code: number | null; stdout: string; stderr: string; hung: boolean }> {
  const dist = (p: string) => JSON.stringify(join(ROOT, 'dist', p));
  return runNodeScript(tmp, `import { PartSealer } from ${dist('store/part-sealer.js')};\nimport { DirectoryStore } from ${dist('store/directory-store.js')};\n` +
    `import { bundleImage } from ${dist('index.js')};\nconst dir = ${JSON.stringify(tmp)};\n${body}`, 30_000);
}

describe('PartSealer from dist/, in a process of its own', () => {
  it('a sealer left unfinished does not keep the process alive; a finished one exits cleanly', async () => {
    const r = await runScript(`
      const store = new DirectoryStore(dir);
      const left = new PartSealer(store.createWriter({ prefix: 'left', maxParts: 4 }), { key: Buffer.alloc(16), iv: Buffer.alloc(16) });
      left.write(Buffer.alloc(3 << 20, 1)); // never ended
      const done = new PartSealer(store.createWriter({ prefix: 'done', maxParts: 4 }), { key: Buffer.alloc(16), iv: Buffer.alloc(16) });
      done.on('finish', () => console.log('parts', done.parts.map((p) => p.size).join(',')));
      done.end(Buffer.alloc(12 << 20, 2));
    `);
    expect(r).toEqual({ code: 0, stdout: 'parts 10485760,2097168\n', stderr: '', hung: false });
  });

  it('bundleImage with an invalid option fails and the process exits: the sealer it made is ended', async () => {
    const r = await runScript(`
      import { writeFileSync } from 'node:fs';
      writeFileSync(dir + '/img', Buffer.alloc(4096, 1));
      await bundleImage({ image: dir + '/img', store: new DirectoryStore(dir), user: '123456789012', arch: 'x86_64', compressionLevel: 42,
        userCertPath: ${JSON.stringify(key('user-cert.pem'))}, userKeyPath: ${JSON.stringify(key('user-key.pem'))}, ec2CertPath: ${JSON.stringify(key('ec2-cert.pem'))} })
        .catch((err) => console.log(err.message));
    `);
    expect(r).toEqual({ code: 0, stdout: 'gzip level must be 0-9, not 42\n', stderr: '', hung: false });
  });
});
