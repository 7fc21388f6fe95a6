// The in-process fuzz of test/unit/unbundle-fuzz.test.ts at depth, in the slow tier: 4000 cases of a second seed
// (the unit tier runs 800 of the first, to stay fast). AMITOOLS_FUZZ_CASES overrides the count.
import { describe } from 'vitest';
import { fuzzCases } from '../helpers/fuzz.js';
import { unmetPrerequisite } from '../helpers/paths.js';
import { describeUnbundleFuzz } from '../helpers/unbundle-fuzz-suites.js';

describe.skipIf(unmetPrerequisite('deep unbundle fuzz', { slow: true }) !== undefined)('deep unbundle fuzz', () => {
  describeUnbundleFuzz(fuzzCases(4000), 0x5eed_0002);
});
