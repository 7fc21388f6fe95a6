// Issue 8, must show 3 (whole-command part): the fixed-seed fuzz through ec2-unbundle itself, on real encrypted,
// signed bundles built from the test keys around mutated tar streams, and on valid bundles with a mutated manifest
// or part. Each run: exit 0 or 254, one line on stderr when it fails and never a stack trace, peak RSS under
// 200 MB, nothing written outside -d and nothing left in it when refused. The many fast cases are in-process
// (test/unit/unbundle-fuzz.test.ts); AMITOOLS_FUZZ_CASES scales both.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { key } from '../helpers/paths.js';
import { runCliPeakRss } from '../helpers/run.js';
import { scratch, writeSignedBundle } from '../helpers/bundles.js';
import { FUZZ_SEED, fuzzCases, mutateManifest, mutateTar, Rng, tarSeeds, type TarSeed } from '../helpers/fuzz.js';

const CASES = Math.max(24, Math.ceil(fuzzCases(3000) / 125));
const RSS_LIMIT = 200 * 1000 * 1000;

const work = scratch('fuzz-cli');
afterAll(work.cleanup);

describe('fuzz: ec2-unbundle on mutated bundles', () => {
  let seeds: TarSeed[];
  beforeAll(async () => { seeds = await tarSeeds(work.dir); });

  it(`${CASES} mutated bundles: exit 0 or 254 with one line, under 200 MB, confined to -d`, async () => {
    const rng = new Rng(FUZZ_SEED ^ 0xc11);
    const failures: string[] = [];
    let peak = 0;
    for (let i = 0; i < CASES && failures.length < 3; i++) {
      const seed = rng.pick(seeds);
      const dir = join(work.dir, `case${i}`);
      const out = join(dir, 'out');
      const outside = join(dir, 'outside');
      mkdirSync(out, { recursive: true });
      mkdirSync(outside);
      const kind = rng.pick(['tar', 'tar', 'tar', 'manifest', 'part'] as const);
      let ops: string[] = [];
      if (kind === 'tar') {
        const m = mutateTar(seed.tar, rng);
        ops = m.ops;
        writeSignedBundle(dir, 'fz', m.tar, seed.imageSize);
      } else {
        writeSignedBundle(dir, 'fz', seed.tar, seed.imageSize);
        if (kind === 'manifest') {
          const m = mutateManifest(readFileSync(join(dir, 'fz.manifest.xml'), 'utf8'), rng);
          ops = m.ops;
          writeFileSync(join(dir, 'fz.manifest.xml'), m.xml);
        } else {
          const part = readFileSync(join(dir, 'fz.part.0'));
          const at = rng.int(part.length);
          part[at] ^= 1 << rng.int(8);
          ops = [`flip a bit of part 0 at ${at}`];
          writeFileSync(join(dir, 'fz.part.0'), part);
        }
      }
      if (rng.chance(0.25)) symlinkSync(outside, join(out, 'd'));
      const before = readdirSync(dir).sort().join();
      const inOutBefore = readdirSync(out).join();
      const r = await runCliPeakRss('ec2-unbundle', ['-m', join(dir, 'fz.manifest.xml'), '-k', key('user-key.pem'), '-s', dir, '-d', out,
        ...(rng.chance(0.7) ? ['--cert', key('user-cert.pem')] : []), '--batch']);
      peak = Math.max(peak, r.peakRss);
      const what = `case ${i} of seed ${FUZZ_SEED} (${seed.label}, ${kind}: ${ops.join('; ')})`;
      const lines = r.stderr.split('\n').filter((l) => l !== '');
      const problems = [
        r.code !== 0 && r.code !== 254 && `exit ${r.code}`,
        r.code === 0 && r.stderr !== '' && 'succeeded with something on stderr',
        r.code === 254 && (lines.length !== 1 || !lines[0].startsWith('ERROR: ')) && 'not one ERROR line',
        /\n\s+at /.test(r.stderr) && 'a stack trace',
        // Control characters in tar names are this test's business; manifest errors are the manifest reader's.
        kind === 'tar' && /[\x00-\x09\x0b-\x1f\x7f]/.test(r.stderr) && 'control characters on stderr',
        r.peakRss >= RSS_LIMIT && `peak RSS ${r.peakRss}`,
        readdirSync(dir).sort().join() !== before && `wrote beside -d: ${readdirSync(dir)}`,
        readdirSync(outside).length > 0 && 'wrote outside -d',
        r.code !== 0 && readdirSync(out).join() !== inOutBefore && `refused but left ${readdirSync(out)}`,
      ].filter(Boolean);
      if (problems.length) failures.push(`${what}: ${problems.join(', ')}\n${r.stderr}`);
    }
    process.stderr.write(`[fuzz] ${CASES} whole unbundles (seed ${FUZZ_SEED}): peak RSS ${(peak / 1e6).toFixed(1)} MB\n`);
    expect(failures).toEqual([]);
  }, Math.max(120_000, CASES * 5000));
});
