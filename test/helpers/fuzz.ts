// A small, seeded mutation engine for the unbundle fuzz tests: valid tar streams and manifests in, hostile ones out.
// Deterministic for a seed; every mutation says what it did, so a failing case can be read and replayed.
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { createTarPack, describeImage } from '../../src/stream/tar-pack.js';
import { writeTestFile, type TestFile } from './tar-files.js';

/** Cases to run: AMITOOLS_FUZZ_CASES, else the CI default. */
export function fuzzCases(ciDefault: number): number {
  const n = Number(process.env.AMITOOLS_FUZZ_CASES);
  return Number.isInteger(n) && n > 0 ? n : ciDefault;
}

/** The fixed seed, or AMITOOLS_FUZZ_SEED to explore further. */
export const FUZZ_SEED = Number(process.env.AMITOOLS_FUZZ_SEED ?? 0x8a11_7a45) >>> 0;

/** mulberry32: small, fast, good enough to pick mutations. */
export class Rng {
  private s: number;
  constructor(seed: number) { this.s = seed >>> 0; }
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number { return Math.floor(this.next() * n); }
  pick<T>(xs: readonly T[]): T { return xs[this.int(xs.length)]; }
  chance(p: number): boolean { return this.next() < p; }
}

// ------------------------------------------------------------------------------------------------------ tar seeds

export interface TarSeed { label: string; tar: Buffer; /** What the manifest's <size> would be: the files' sizes. */ imageSize: number }

const KiB = 1024;
const SEED_FILES: TestFile[] = [
  { name: 'dense.img', size: 5000, data: [{ offset: 0, length: 5000 }], mode: 0o600 },
  { name: 'sparse.img', size: 256 * KiB, data: [{ offset: 4096, length: 8192 }, { offset: 100 * KiB, length: 4096 }, { offset: 250 * KiB, length: 6 * KiB }], sparse: true },
  { name: `${'long-name-'.repeat(12)}.img`, size: 700, data: [{ offset: 0, length: 700 }] },
];

/** Valid tar streams of small files: ours (createTarPack) and GNU tar's in every format TarExtract reads. */
export async function tarSeeds(dir: string): Promise<TarSeed[]> {
  const src = join(dir, 'seed-src');
  mkdirSync(join(src, 'd'), { recursive: true });
  for (const f of SEED_FILES) writeTestFile(src, f);
  writeTestFile(join(src, 'd'), { name: 'f.img', size: 3000, data: [{ offset: 0, length: 3000 }] });
  const size = (name: string) => SEED_FILES.find((f) => f.name === name)!.size;
  const seeds: TarSeed[] = [];
  for (const f of SEED_FILES) {
    seeds.push({ label: `ours ${f.name.slice(0, 12)}`, tar: await buffer(createTarPack(await describeImage(join(src, f.name), f.name))), imageSize: f.size });
  }
  const gnu = (label: string, flags: string[], names: string[], imageSize: number) =>
    seeds.push({ label, tar: execFileSync('tar', ['-c', ...flags, '--owner', '0', '--group', '0', '-f', '-', '-C', src, ...names]), imageSize });
  gnu('gnu -S', ['--format=gnu', '-S'], ['sparse.img'], size('sparse.img'));
  gnu('oldgnu -S', ['--format=oldgnu', '-S'], ['sparse.img'], size('sparse.img'));
  for (const v of ['0.0', '0.1', '1.0']) gnu(`pax -S ${v}`, ['--format=pax', '-S', `--sparse-version=${v}`], ['sparse.img'], size('sparse.img'));
  gnu('pax', ['--format=pax'], ['dense.img', SEED_FILES[2].name], size('dense.img') + 700);
  gnu('ustar', ['--format=ustar'], ['dense.img'], size('dense.img'));
  gnu('gnu tree', ['--format=gnu'], ['d', 'dense.img'], 3000 + size('dense.img'));
  return seeds;
}

// --------------------------------------------------------------------------------------------------- tar mutations

const BLOCK = 512;
const FIELDS: [name: string, off: number, len: number][] = [
  ['name', 0, 100], ['mode', 100, 8], ['uid', 108, 8], ['size', 124, 12], ['mtime', 136, 12], ['typeflag', 156, 1],
  ['linkname', 157, 100], ['magic', 257, 8], ['prefix', 345, 155], ['sparse0.offset', 386, 12], ['sparse0.size', 398, 12],
  ['sparse3.size', 470, 12], ['isextended', 482, 1], ['realsize', 483, 12],
];
const TYPES = '0125SLKxgVD7M\0';

function looksLikeHeader(b: Buffer, at: number): boolean {
  return at + BLOCK <= b.length && (b.toString('latin1', at + 257, at + 262) === 'ustar');
}

function headerOffsets(b: Buffer): number[] {
  const out: number[] = [];
  for (let at = 0; at + BLOCK <= b.length; at += BLOCK) if (looksLikeHeader(b, at)) out.push(at);
  return out;
}

function fixChecksum(b: Buffer, at: number): void {
  b.fill(0x20, at + 148, at + 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += b[at + i];
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, at + 148, 'latin1');
}

/** A value for a numeric or text header field, chosen to reach the edges. */
function interesting(rng: Rng, len: number): Buffer {
  const v = Buffer.alloc(len);
  switch (rng.int(9)) {
    case 0: return v; // all NUL
    case 1: return v.fill('7'.charCodeAt(0), 0, len - 1); // the largest octal
    case 2: v.fill(0xff); return v; // base-256 -1
    case 3: v.fill(0); v[0] = 0x80; v.fill(0xff, 1); return v; // a huge base-256
    case 4: v.fill(0); v[0] = 0x80; v[len - 1] = rng.int(256); v[len - 2] = rng.int(256); return v;
    case 5: v.write(String(rng.int(8 ** Math.min(len - 1, 8))).padStart(len - 1, ' '), 'latin1'); return v;
    case 6: for (let i = 0; i < len; i++) v[i] = rng.int(256); return v;
    case 7: v.write('\x1b]0;x\x07/../.a\\b'.slice(0, len), 'latin1'); return v;
    default: v.write(rng.int(2 ** 20).toString(8).padStart(len - 1, '0').slice(-(len - 1)), 'latin1'); return v;
  }
}

/** A decimal number to put where a pax or sparse 1.0 map number was. */
function interestingNumber(rng: Rng): string {
  return rng.pick(['0', '1', '4096', '99999999999999999999', '9007199254740993', '-1', '18446744073709551615', String(rng.int(1e9)), '1e3', '']);
}

type TarMutation = (b: Buffer, rng: Rng) => [Buffer, string];

const TAR_MUTATIONS: TarMutation[] = [
  (b, rng) => { // bit flips anywhere
    const c = Buffer.from(b);
    const n = 1 + rng.int(8);
    for (let i = 0; i < n && c.length; i++) c[rng.int(c.length)] ^= 1 << rng.int(8);
    return [c, `flip ${n} bits`];
  },
  (b, rng) => { // a header field set to an edge value, checksum fixed so the change gets past it
    const hs = headerOffsets(b);
    if (!hs.length) return [b, 'no header'];
    const c = Buffer.from(b);
    const at = rng.pick(hs);
    const [name, off, len] = rng.pick(FIELDS);
    if (name === 'typeflag') c[at + off] = TYPES.charCodeAt(rng.int(TYPES.length));
    else interesting(rng, len).copy(c, at + off);
    fixChecksum(c, at);
    return [c, `set ${name} of header at ${at}`];
  },
  (b, rng) => { // header bits flipped, checksum fixed
    const hs = headerOffsets(b);
    if (!hs.length) return [b, 'no header'];
    const c = Buffer.from(b);
    const at = rng.pick(hs);
    for (let i = 0; i < 1 + rng.int(4); i++) c[at + rng.int(BLOCK)] ^= 1 << rng.int(8);
    fixChecksum(c, at);
    return [c, `flip bits in header at ${at} (checksum fixed)`];
  },
  (b, rng) => { // truncation
    const at = rng.chance(0.5) ? rng.int(b.length) : rng.int(Math.ceil(b.length / BLOCK)) * BLOCK;
    return [b.subarray(0, at), `truncate at ${at}`];
  },
  (b, rng) => { // one field swapped between two headers
    const hs = headerOffsets(b);
    if (hs.length < 2) return [b, 'fewer than 2 headers'];
    const c = Buffer.from(b);
    const x = rng.pick(hs);
    const y = rng.pick(hs);
    const [name, off, len] = rng.pick(FIELDS);
    const tmp = Buffer.from(c.subarray(x + off, x + off + len));
    c.copy(c, x + off, y + off, y + off + len);
    tmp.copy(c, y + off);
    fixChecksum(c, x);
    fixChecksum(c, y);
    return [c, `swap ${name} of headers at ${x} and ${y}`];
  },
  (b, rng) => { // a block (often a header) repeated
    const blocks = Math.floor(b.length / BLOCK);
    if (!blocks) return [b, 'no block'];
    const hs = headerOffsets(b);
    const at = hs.length && rng.chance(0.7) ? rng.pick(hs) : rng.int(blocks) * BLOCK;
    const span = BLOCK * (1 + rng.int(3));
    const times = rng.pick([1, 2, 10, 1000]);
    const piece = b.subarray(at, at + span);
    return [Buffer.concat([b.subarray(0, at), ...Array(times).fill(piece), b.subarray(at)]), `repeat ${span} bytes at ${at} ${times}x`];
  },
  (b, rng) => { // blocks swapped, inserted or removed
    const blocks = Math.floor(b.length / BLOCK);
    if (blocks < 2) return [b, 'too short'];
    const x = rng.int(blocks) * BLOCK;
    const y = rng.int(blocks) * BLOCK;
    switch (rng.int(3)) {
      case 0: {
        const c = Buffer.from(b);
        b.copy(c, x, y, y + BLOCK);
        b.copy(c, y, x, x + BLOCK);
        return [c, `swap blocks ${x} and ${y}`];
      }
      case 1: return [Buffer.concat([b.subarray(0, x), b.subarray(x + BLOCK)]), `remove block ${x}`];
      default: return [Buffer.concat([b.subarray(0, x), b.subarray(y, y + BLOCK), b.subarray(x)]), `copy block ${y} to ${x}`];
    }
  },
  (b, rng) => { // a decimal number in a pax record or a sparse 1.0 map replaced (lengths then disagree, or not)
    const text = b.toString('latin1');
    const runs = [...text.matchAll(/(?<=[=\n,])\d+(?=[\n,])/g)];
    if (!runs.length) return [b, 'no decimal'];
    const m = rng.pick(runs);
    const v = interestingNumber(rng);
    const same = rng.chance(0.5) && v.length <= m[0].length ? v.padStart(m[0].length, '0') : v;
    const out = Buffer.concat([b.subarray(0, m.index), Buffer.from(same, 'latin1'), b.subarray(m.index! + m[0].length)]);
    return [out, `decimal '${m[0]}' at ${m.index} -> '${same}'`];
  },
  (b, rng) => { // garbage or zeros appended
    const n = rng.pick([1, 511, 512, 10240, 100_000]);
    const tail = rng.chance(0.5) ? Buffer.alloc(n) : Buffer.from(Array.from({ length: n }, () => rng.int(256)));
    return [Buffer.concat([b, tail]), `append ${n} bytes`];
  },
];

/** One to `most` mutations picked from `mutations`, applied in turn, and what they were. */
function mutate<T>(value: T, mutations: ((v: T, rng: Rng) => [T, string])[], most: number, rng: Rng): { value: T; ops: string[] } {
  const ops: string[] = [];
  for (let i = 0, n = 1 + rng.int(most); i < n; i++) {
    const [next, what] = rng.pick(mutations)(value, rng);
    value = next;
    ops.push(what);
  }
  return { value, ops };
}

/** One to four mutations of a valid tar stream, and what they were. */
export function mutateTar(seed: Buffer, rng: Rng): { tar: Buffer; ops: string[] } {
  const { value, ops } = mutate(seed, TAR_MUTATIONS, 4, rng);
  return { tar: value, ops };
}

/** Splits a stream into chunks of uneven sizes, so headers and maps fall across writes. */
export function chunked(b: Buffer, rng: Rng): Buffer[] {
  const out: Buffer[] = [];
  for (let p = 0; p < b.length;) {
    const n = rng.pick([1, 7, 511, 512, 513, 4096, 65536, 1 << 20]);
    out.push(b.subarray(p, p + n));
    p += n;
  }
  return out;
}

// ------------------------------------------------------------------------------------------------ manifest mutations

type TextMutation = (xml: string, rng: Rng) => [string, string];

const ELEMENT = /<([a-z_]+)(?: [^>]*)?>[^<]*<\/\1>/g;

const MANIFEST_MUTATIONS: TextMutation[] = [
  (x, rng) => { // bit flips
    const b = Buffer.from(x, 'utf8');
    const n = 1 + rng.int(4);
    for (let i = 0; i < n; i++) b[rng.int(b.length)] ^= 1 << rng.int(8);
    return [b.toString('latin1'), `flip ${n} bits`];
  },
  (x, rng) => { const at = rng.int(x.length); return [x.slice(0, at), `truncate at ${at}`]; },
  (x, rng) => { // an element duplicated
    const els = [...x.matchAll(ELEMENT)];
    if (!els.length) return [x, 'no element'];
    const m = rng.pick(els);
    const at = m.index! + m[0].length;
    return [x.slice(0, at) + m[0] + x.slice(at), `duplicate <${m[1]}>`];
  },
  (x, rng) => { // two elements' texts swapped
    const els = [...x.matchAll(ELEMENT)];
    if (els.length < 2) return [x, 'fewer than 2 elements'];
    const a = rng.pick(els);
    const b = rng.pick(els);
    if (a.index === b.index) return [x, 'same element'];
    const [first, second] = a.index! < b.index! ? [a, b] : [b, a];
    return [x.slice(0, first.index) + second[0] + x.slice(first.index! + first[0].length, second.index) + first[0] + x.slice(second.index! + second[0].length),
      `swap <${first[1]}> and <${second[1]}>`];
  },
  (x, rng) => { // markup inserted at a tag boundary: comment, PI, CDATA, DOCTYPE, unknown element, deep nesting
    const gts = [...x.matchAll(/>/g)];
    const at = gts.length ? rng.pick(gts).index! + 1 : 0;
    const what = rng.pick(['<!-- c -->', '<?pi x?>', '<![CDATA[x]]>', '<!DOCTYPE m [<!ENTITY e "x">]>', '<unknown>u</unknown>',
      '<a>'.repeat(20000), '&e;', '<!-- ', ' -->', '\x1b]0;t\x07']);
    return [x.slice(0, at) + what + x.slice(at), `insert ${JSON.stringify(what.slice(0, 20))} at ${at}`];
  },
  (x, rng) => { // a signed region wrapped, and an attacker's own appended after it
    const start = x.indexOf('<machine_configuration>');
    const end = x.indexOf('</image>') + '</image>'.length;
    if (start < 0 || end < start) return [x, 'no signed region'];
    const region = x.slice(start, end);
    const evil = region.replace(/<size>\d+<\/size>/, '<size>1</size>');
    const [open, close] = rng.pick([['<!--', '-->'], ['<?x ', '?>'], ['<x>', '</x>']]);
    return [x.slice(0, start) + open + region + close + evil + x.slice(end), `wrap the signed region in ${open}…${close} and append another`];
  },
  (x, rng) => { // a number replaced
    const nums = [...x.matchAll(/>(\d+)</g)];
    if (!nums.length) return [x, 'no number'];
    const m = rng.pick(nums);
    const v = interestingNumber(rng);
    return [x.slice(0, m.index! + 1) + v + x.slice(m.index! + 1 + m[1].length), `number ${m[1]} -> ${v}`];
  },
];

/** One to three mutations of a manifest's text, and what they were. */
export function mutateManifest(xml: string, rng: Rng): { xml: string; ops: string[] } {
  const { value, ops } = mutate(xml, MANIFEST_MUTATIONS, 3, rng);
  return { xml: value, ops };
}
