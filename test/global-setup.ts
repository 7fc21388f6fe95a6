import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from './helpers/paths.js';

/** The CLI tests run bin/*.js, which import dist/: build once before any test. */
export default function setup(): void {
  execFileSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(ROOT, 'tsconfig.json')], { stdio: 'inherit' });
}
