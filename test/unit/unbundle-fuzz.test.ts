// Issue 8, must show 3 (in-process part): a fixed-seed fuzz of what unbundle reads (test/helpers/unbundle-fuzz-suites.ts),
// a few hundred cases in seconds, which a spawned command per case could not do (test/cli/unbundle-fuzz.test.ts runs
// fewer, whole, through the CLI). AMITOOLS_FUZZ_CASES runs more; AMITOOLS_FUZZ_SEED explores other seeds;
// test/slow/unbundle-fuzz-deep.test.ts runs 4000 cases of another seed.
import { FUZZ_SEED, fuzzCases } from '../helpers/fuzz.js';
import { describeUnbundleFuzz } from '../helpers/unbundle-fuzz-suites.js';

describeUnbundleFuzz(fuzzCases(800), FUZZ_SEED);
