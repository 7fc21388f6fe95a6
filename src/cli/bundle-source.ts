// The flags that say where a bundle is read from, shared by ec2-unbundle and ec2-convert-to-ebs: a local manifest and
// a directory of parts (-m PATH -s DIR), or an S3 prefix (-b BUCKET[/PREFIX] with -m NAME or -p PREFIX).
import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import { PLAIN_FILE_NAME_RULE, isPlainFileName } from '../format/part-name.js';
import { invalidValue, requireDirectory, requireFile } from './command.js';

export interface BundleSourceFlags { bucket?: string; manifest?: string; prefix?: string; source: string; privatekey?: string; cert?: string; profile?: string }

/** Whether the flag with this attribute name was given on the command line (not a default). */
export const given = (cmd: Command, name: string): boolean => cmd.getOptionValueSource(name) === 'cli';

/** The long flag of an attribute name: endpointUrl → --endpoint-url. */
export const flagName = (attr: string): string => `--${attr.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

/** Checks the source flags; `s3Only`: attribute names of flags that mean nothing without -b. */
export function checkBundleSource(o: BundleSourceFlags, cmd: Command, s3Only: readonly string[]): void {
  if (o.bucket !== undefined) {
    if (given(cmd, 'source')) throw new UsageError('-s/--source names a directory of parts; with -b the parts are read from S3: give one or the other');
    for (const [flag, v] of [['--manifest', o.manifest], ['--prefix', o.prefix]] as const) {
      if (v !== undefined && !isPlainFileName(v)) throw invalidValue(flag, v, `a plain name is required (${PLAIN_FILE_NAME_RULE}); put key prefixes in -b BUCKET/key/prefix`);
    }
    return;
  }
  if (o.prefix !== undefined) throw new UsageError('-p/--prefix names a bundle in S3: give it with -b BUCKET');
  const stray = s3Only.find((n) => given(cmd, n));
  if (stray) throw new UsageError(`${flagName(stray)} is for a bundle in S3: give it with -b BUCKET`);
  requireFile(o.manifest, '--manifest');
  requireDirectory(o.source, '--source');
}
