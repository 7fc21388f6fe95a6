// The in-process fuzz of test/unit/unbundle-fuzz.test.ts at depth, in the slow tier: 4000 cases of a second seed
// (the unit tier runs 800 of the first, to stay fast). AMITOOLS_FUZZ_CASES / AMITOOLS_FUZZ_SEED still override.
import { describe, it } from 'vitest';
import { unmetPrerequisite } from '../helpers/paths.js';

const unmet = unmetPrerequisite('deep unbundle fuzz', { slow: true });
if (unmet) {
  describe.skip(`deep unbundle fuzz (${unmet})`, () => it('runs the unit fuzz with 4000 cases', () => {}));
} else {
  process.env.AMITOOLS_FUZZ_CASES ??= '4000';
  process.env.AMITOOLS_FUZZ_SEED ??= String(0x5eed_0002);
  await import('../unit/unbundle-fuzz.test.js');
}
