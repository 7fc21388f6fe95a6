import { readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

/** Our release, written into manifests' <bundler> and printed by --version. */
export const TOOL_VERSION: string = pkg.version;
export const TOOL_NAME = 'amitools';
/** The manifest format we write, as ec2-ami-tools-version prints it. */
export const MANIFEST_VERSION_COMPACT = '20071010';
export const COPYRIGHT = 'Copyright (c) the amitools authors. Licensed under the Apache License, Version 2.0. Not affiliated with Amazon.';

/**
 * Our <bundler> element. The original writes its x.y.z release as version 'x.y' and release 'z'
 * (1.5.3 → 1.5 / 3); we split our package version the same way (0.1.0 → 0.1 / 0).
 */
export function toolBundler(version: string = TOOL_VERSION): { name: string; version: string; release: string } {
  const m = /^(\d+\.\d+)\.(.+)$/.exec(version);
  return m ? { name: TOOL_NAME, version: m[1]!, release: m[2]! } : { name: TOOL_NAME, version, release: '0' };
}
