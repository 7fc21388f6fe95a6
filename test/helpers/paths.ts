import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const SHARED = join(ROOT, '..', 'shared');
export const FIXTURES = join(SHARED, 'fixtures');
export const REFERENCE = join(FIXTURES, 'reference-bundles');
export const KEYS = join(FIXTURES, 'keys');
export const AWS_CERTS = join(FIXTURES, 'aws-certs');

export const key = (name: string) => join(KEYS, name);
export const reference = (...parts: string[]) => join(REFERENCE, ...parts);

/** Slow suites (Swift, debootstrap, qemu) run in CI; set AMITOOLS_SKIP_SLOW=1 locally to skip them. */
export const SKIP_SLOW = process.env.AMITOOLS_SKIP_SLOW === '1' && process.env.CI !== 'true';
