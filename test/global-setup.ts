import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from './helpers/paths.js';

/**
 * The CLI tests run bin/*.js, which import dist/: build once before any test. Type errors don't stop the build
 * here (tsc still emits); `npm test` runs the type check on its own first.
 */
export default function setup(): void {
  const r = spawnSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(ROOT, 'tsconfig.json')], { encoding: 'utf8' });
  if (r.status !== 0) process.stderr.write(`tsc reported problems (dist/ was still built):\n${r.stdout}${r.stderr}`);
}
