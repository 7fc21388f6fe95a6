import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The compiled worker script `name`.js (a path under src/, e.g. 'stream/gzip-worker'); vitest runs the TypeScript
 *  sources, whose workers only exist built in dist/. */
export function workerScript(name: string): string {
  const here = import.meta.url;
  const url = here.endsWith('.ts') ? new URL(`../../dist/${name}.js`, here) : new URL(`../${name}.js`, here);
  const path = fileURLToPath(url);
  if (!existsSync(path)) throw new Error(`worker ${path} is missing: build the project with 'npx tsc -p .'`);
  return path;
}
