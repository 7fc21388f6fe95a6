// Issue 8, must show 1 (the tar side): hostile tar streams inside validly signed, encrypted bundles. ec2-unbundle
// refuses each with exit 254 and one line on stderr, under a 200 MB peak RSS, leaving nothing in -d and writing
// nothing outside it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { chmodSync, lstatSync, mkdirSync, readdirSync, statSync, symlinkSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { key } from '../helpers/paths.js';
import { runCliPeakRss, type RunResult } from '../helpers/run.js';
import { scratch, writeSignedBundle } from '../helpers/bundles.js';
import { archive, entry, pad, paxEntry, paxRecord, rawHeader, sparseExtensions } from '../helpers/tar-craft.js';

const RSS_LIMIT = 200 * 1000 * 1000;
const MiB = 1 << 20;

const work = scratch('hostile-tar');
afterAll(work.cleanup);

const file = (name: string, data: Buffer | string) => entry({ name }, data);
const x = (records: string) => paxEntry(records);

interface Case {
  tar: () => Buffer;
  /** The manifest's <size>. */
  imageSize: number;
  error: RegExp;
  /** Set up -d before the run: a symlink to the outside directory under this name. */
  linkInDestination?: string;
}

const cases: Record<string, Case> = {
  'pax accumulation: 500 000 records over consecutive extended headers': {
    tar: () => archive(...Array(5000).fill(x(paxRecord('c', 'x').repeat(100))), file('x.img', 'data')),
    imageSize: 4, error: /a second pax extended header for the same member/,
  },
  'a pax header of 64 MiB': {
    tar: () => archive(x(paxRecord('comment', 'y'.repeat(64 * MiB))), file('x.img', 'data')),
    imageSize: 4, error: /pax header of \d+ bytes is too large/,
  },
  'a GNU 0.0 sparse map of 150 000 regions for a member of 4 bytes': {
    tar: () => {
      let r = paxRecord('GNU.sparse.size', '300000') + paxRecord('GNU.sparse.name', 'x.img');
      for (let i = 0; i < 150_000; i++) r += paxRecord('GNU.sparse.offset', String(2 * i)) + paxRecord('GNU.sparse.numbytes', '1');
      return archive(x(r), file('GNUSparseFile.0/x.img', 'data'));
    },
    imageSize: 300_000, error: /tar member 'x\.img': sparse map of 150000 entries is more than the member can hold/,
  },
  'an old GNU sparse map of 1.1 million regions (26 MB of extension blocks)': {
    tar: () => {
      const n = 1_100_000;
      const h = rawHeader({ name: 'x.img', size: n, type: 'S', sparse: { realsize: 1000 * n, map: [[0, 1], [1000, 1], [2000, 1], [3000, 1]], extended: true } });
      return archive(h, sparseExtensions(n - 4, (i) => [1000 * (i + 4), 1]), Buffer.alloc(n));
    },
    imageSize: 1000 * 1_100_000, error: /sparse map entry 1048576 is more than the member can hold/,
  },
  'a sparse map as large as allowed, 64 MiB of data, then a link': {
    tar: () => {
      // The most a map may hold, kept while the member's data streams through: the heaviest refusal.
      const n = 2 ** 20;
      const big = 64 * MiB;
      const at = (i: number): [number, number] => (i < n - 1 ? [1000 * i, 1] : [1000 * i, big]);
      const h = rawHeader({ name: 'x.img', size: n - 1 + big, type: 'S', sparse: { realsize: 1000 * n + big, map: [0, 1, 2, 3].map(at), extended: true } });
      return archive(h, sparseExtensions(n - 4, (i) => at(i + 4)), Buffer.alloc(n - 1, 1), randomBytes(big), pad(n - 1 + big), entry({ name: 'l', type: '2' }));
    },
    imageSize: 1000 * 2 ** 20 + 64 * MiB, error: /tar member 'l' is a symbolic link/,
  },
  'an old GNU sparse map with more regions than the member stores bytes': {
    tar: () => {
      const h = rawHeader({ name: 'x.img', size: 100, type: 'S', sparse: { realsize: 1 << 30, map: [[0, 1], [2, 1], [4, 1], [6, 1]], extended: true } });
      return archive(h, sparseExtensions(1_000_000, (i) => [2 * (i + 4), 1]), Buffer.alloc(512));
    },
    imageSize: 1 << 30, error: /sparse map entry 100 holds more bytes than the member stores/,
  },
  'a GNU sparse 1.0 map declaring a billion regions': {
    tar: () => archive(
      x(paxRecord('GNU.sparse.major', '1') + paxRecord('GNU.sparse.minor', '0') + paxRecord('GNU.sparse.name', 'x.img') + paxRecord('GNU.sparse.realsize', '4096')),
      file('GNUSparseFile.0/x.img', Buffer.concat([Buffer.from('1000000000\n0\n'), Buffer.alloc(1000)])),
    ),
    imageSize: 4096, error: /GNU sparse map of 1000000000 entries is more than the member can hold/,
  },
  'a sparse member of 1 TiB in a bundle of a 1 MiB image': {
    tar: () => archive(rawHeader({ name: 'x.img', size: 512, type: 'S', sparse: { realsize: 2 ** 40, map: [[0, 512], [2 ** 40, 0]], extended: false } }), Buffer.alloc(512, 1)),
    imageSize: MiB, error: /tar member 'x\.img' is 1099511627776 bytes, more than the 1048576-byte image the manifest states/,
  },
  'a member of 64 MiB in a bundle of a 1 MiB image': {
    tar: () => archive(file('x.img', Buffer.alloc(64 * MiB))),
    imageSize: MiB, error: /tar member 'x\.img' is 67108864 bytes, more than the 1048576-byte image/,
  },
  '64 MiB of zeros after the end of the archive': {
    tar: () => Buffer.concat([archive(file('x.img', Buffer.alloc(MiB, 1))), Buffer.alloc(64 * MiB)]),
    imageSize: MiB, error: /the tar stream is longer than a 1048576-byte image needs/,
  },
  '2000 members': {
    tar: () => archive(...Array.from({ length: 2000 }, (_, i) => file(`f${i}.img`, ''))),
    imageSize: MiB, error: /more than 1024 files and directories/,
  },
  'a member written through a symlink under -d': {
    tar: () => archive(file('sub/x.img', 'evil')),
    imageSize: 4, error: /would be written through '.*\/out\/sub', a symbolic link in the destination/, linkInDestination: 'sub',
  },
  'a directory member naming a symlink under -d': {
    tar: () => archive(entry({ name: 'sub/', type: '5', mode: 0o777, mtime: 1000 }), file('sub/x.img', 'evil')),
    imageSize: 4, error: /a symbolic link in the destination; refusing to follow it/, linkInDestination: 'sub',
  },
  'a member name with an escape sequence': {
    tar: () => archive(file('\x1b]0;pwned\x07\x1b[2J.img', 'data')),
    imageSize: 4, error: /tar member '\\x1b\]0;pwned\\x07\\x1b\[2J\.img' has a component .* that is not a plain file name/,
  },
  'a hidden member name': {
    tar: () => archive(file('.bashrc', 'evil')),
    imageSize: 4, error: /tar member '\.bashrc' has a component '\.bashrc' that is not a plain file name/,
  },
  'a failure after two complete members': {
    tar: () => archive(entry({ name: 'd/', type: '5' }), file('d/a.img', 'aa'), file('b.img', 'bb'), entry({ name: 'l', type: '2' })),
    imageSize: 4, error: /tar member 'l' is a symbolic link/,
  },
};

let n = 0;
/** A case directory: the bundle, `out` (the destination) and `outside` (must stay untouched). */
function caseDir(c: Case): { dir: string; out: string; outside: string } {
  const dir = join(work.dir, `case${n++}`);
  const out = join(dir, 'out');
  const outside = join(dir, 'outside');
  mkdirSync(out, { recursive: true });
  mkdirSync(outside);
  chmodSync(outside, 0o700);
  utimesSync(outside, 5000, 5000);
  writeSignedBundle(dir, 'evil', c.tar(), c.imageSize);
  if (c.linkInDestination) symlinkSync(outside, join(out, c.linkInDestination));
  return { dir, out, outside };
}

const unbundle = (dir: string, out: string) => runCliPeakRss('ec2-unbundle',
  ['-m', join(dir, 'evil.manifest.xml'), '-k', key('user-key.pem'), '-s', dir, '-d', out, '--cert', key('user-cert.pem'), '--batch']);

function expectOneLine(r: RunResult, pattern: RegExp): void {
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^ERROR: /);
  expect(lines[0]).toMatch(pattern);
  expect(r.stderr).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f]/); // no escape sequence reaches the terminal
}

describe('ec2-unbundle refuses hostile tar streams in signed bundles', () => {
  let control: Awaited<ReturnType<typeof unbundle>>;
  beforeAll(async () => {
    // The same harness on a valid bundle: it unbundles, and gives the peak RSS to compare with.
    const c = caseDir({ tar: () => archive(file('good.img', Buffer.alloc(MiB, 3))), imageSize: MiB, error: /^$/ });
    control = await unbundle(c.dir, c.out);
    expect(readdirSync(c.out)).toEqual(['good.img']);
  });

  it('the harness unbundles a valid bundle', () => {
    expect(control.stderr).toBe('');
    expect(control.code).toBe(0);
    expect(control.peakRss).toBeLessThan(RSS_LIMIT);
  });

  it.each(Object.keys(cases))('%s', async (label) => {
    const c = cases[label];
    const { dir, out, outside } = caseDir(c);
    const before = readdirSync(dir).sort(); // the bundle, out and outside
    const r = await unbundle(dir, out);
    expect(r.code, r.stderr).toBe(254);
    expectOneLine(r, c.error);
    expect(r.peakRss, `peak RSS ${(r.peakRss / 1e6).toFixed(0)} MB`).toBeLessThan(RSS_LIMIT);
    process.stderr.write(`[rss] ${label}: ${(r.peakRss / 1e6).toFixed(1)} MB (valid bundle: ${(control.peakRss / 1e6).toFixed(1)} MB)\n`);
    // Nothing left in the destination (a link that was there stays, untouched), nothing written outside it.
    expect(readdirSync(out)).toEqual(c.linkInDestination ? [c.linkInDestination] : []);
    if (c.linkInDestination) expect(lstatSync(join(out, c.linkInDestination)).isSymbolicLink()).toBe(true);
    expect(readdirSync(dir).sort()).toEqual(before);
    expect(readdirSync(outside)).toEqual([]);
    expect(statSync(outside).mode & 0o777).toBe(0o700);
    expect(statSync(outside).mtimeMs).toBe(5000 * 1000);
  });
});
