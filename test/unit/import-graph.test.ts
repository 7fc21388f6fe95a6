// The layers of docs/architecture: imports point down, never up. Read from the sources, so a new module is covered.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/paths.js';

const SRC = join(ROOT, 'src');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []);
}

/** Every relative import of every module, as paths relative to src/ (e.g. 'cli/errors.ts'). */
function graph(): Map<string, string[]> {
  const g = new Map<string, string[]>();
  for (const file of sources(SRC)) {
    const text = readFileSync(file, 'utf8');
    const specs = [...text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)['"](\.[^'"]+)['"]/gm)].map((m) => m[1]!);
    g.set(relative(SRC, file), specs.map((s) => relative(SRC, resolve(dirname(file), s)).replace(/\.js$/, '.ts')));
  }
  return g;
}

const layer = (path: string) => (path.includes('/') ? path.slice(0, path.indexOf('/')) : path);

function violations(allowed: (from: string, to: string) => boolean): string[] {
  const out: string[] = [];
  for (const [from, tos] of graph()) for (const to of tos) if (!allowed(from, to)) out.push(`${from} imports ${to}`);
  return out;
}

describe('import graph', () => {
  it('reads the sources (the check is not vacuous)', () => {
    const g = graph();
    expect(g.size).toBeGreaterThan(40);
    expect(g.get('cli/unbundle.ts')).toContain('cli/command.ts');
  });

  it('nothing outside src/cli/ imports src/cli/', () => {
    expect(violations((from, to) => layer(from) === 'cli' || layer(to) !== 'cli')).toEqual([]);
  });

  it('transport (s3, ec2, ebs, aws) knows nothing of bundles, stores or streams', () => {
    const transport = new Set(['s3', 'ec2', 'ebs', 'aws']);
    expect(violations((from, to) => !transport.has(layer(from)) || !['bundle', 'store', 'stream', 'volume', 'cli', 'index.ts'].includes(layer(to)))).toEqual([]);
  });

  it('format/ is pure: it imports only errors and itself', () => {
    expect(violations((from, to) => layer(from) !== 'format' || layer(to) === 'format' || to === 'errors.ts')).toEqual([]);
  });

  it('stages (stream/) and codecs never import operations', () => {
    expect(violations((from, to) => !['stream', 'format', 'crypto'].includes(layer(from)) || !['bundle', 'store', 's3', 'ec2', 'ebs', 'cli', 'index.ts'].includes(layer(to)))).toEqual([]);
  });
});
