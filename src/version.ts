import { readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

/** Our release, written into manifests' <bundler> and printed by --version. */
export const TOOL_VERSION: string = pkg.version;
export const TOOL_NAME = 'amitools';
/** The manifest format we write, as ec2-ami-tools-version prints it. */
export const MANIFEST_VERSION_COMPACT = '20071010';
export const COPYRIGHT = 'Copyright (c) the amitools authors. Licensed under the Apache License, Version 2.0. Not affiliated with Amazon.';
