import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Keys and the original tool's reference bundles, kept in the repository. */
export const FIXTURES = join(ROOT, 'test', 'fixtures');
export const REFERENCE = join(FIXTURES, 'reference-bundles');
export const KEYS = join(FIXTURES, 'keys');
export const ORIGINAL_HELP = join(FIXTURES, 'original-help');
/** Amazon's own EC2 certificates are not redistributed: read from ../shared beside the clone when it is there. */
export const AWS_CERTS = join(ROOT, '..', 'shared', 'fixtures', 'aws-certs');
export const HAVE_AWS_CERTS = existsSync(join(AWS_CERTS, 'cert-ec2.pem'));
export const NO_AWS_CERTS_REASON = `Amazon's EC2 certificates not found in ${AWS_CERTS}`;

export const key = (name: string) => join(KEYS, name);
export const reference = (...parts: string[]) => join(REFERENCE, ...parts);

/** Slow suites (Swift, debootstrap, qemu) run in CI; set AMITOOLS_SKIP_SLOW=1 locally to skip them. */
export const SKIP_SLOW = process.env.AMITOOLS_SKIP_SLOW === '1' && process.env.CI !== 'true';

/** Says once, on stderr, why a suite's tests are skipped (vitest prints no reason of its own). */
export function skipNotice(skipped: boolean, reason: string): void {
  if (skipped) process.stderr.write(`[skipped] ${reason}\n`);
}

/**
 * Why a suite cannot run here, or undefined: AMITOOLS_SKIP_SLOW for slow suites, a missing command, or not root.
 * The reason is printed (skipNotice) so that a skipped suite is named in the output.
 */
export function unmetPrerequisite(suite: string, o: { slow?: boolean; commands?: string[]; root?: boolean }): string | undefined {
  const missing = o.slow && SKIP_SLOW ? 'AMITOOLS_SKIP_SLOW=1'
    : o.root && process.getuid?.() !== 0 ? 'it needs root'
    : o.commands?.filter((c) => !onPath(c)).map((c) => `${c} is not installed`).join(', ') || undefined;
  skipNotice(missing !== undefined, `${suite}: ${missing}`);
  return missing;
}

function onPath(command: string): boolean {
  return (process.env.PATH ?? '').split(':').some((d) => d !== '' && existsSync(join(d, command)));
}
