/**
 * Which files of the volume go into the image, as rsync filter rules (first match wins). Paths in rules are
 * anchored at the volume root: with -v /srv/root, "/opt/x" means /srv/root/opt/x, as in the original.
 */

/** Directories whose contents never go into the image; the directories themselves are kept as mount points. */
export const ALWAYS_EMPTIED = ['/dev', '/media', '/mnt', '/proc', '/sys'];

/** The original's filter of sensitive files, as it documents them (globs on the whole path). */
export const SENSITIVE_PATTERNS = [
  '*/#*#', '*/.#*', '*.sw', '*.swo', '*.swp', '*~', '*.pem', '*.priv', '*id_rsa*', '*id_dsa*', '*.gpg', '*.jks',
  '*/.ssh/authorized_keys', '*/.bash_history',
];

/**
 * Public keys and CA certificates the filter would otherwise drop (*.pem, *.gpg) though a system needs them to
 * update itself: kept unless -e names them.
 */
export const KEEP_LIST = ['/etc/ssl/certs', '/usr/share/keyrings', '/etc/apt/trusted.gpg*', '/etc/apt/keyrings', '/etc/pki'];

/** A sensitive glob as an rsync pattern: a leading "*\/" only says "in any directory", which rsync does unanchored. */
export function rsyncPattern(glob: string): string {
  return glob.startsWith('*/') ? glob.slice(2) : glob;
}

export interface SelectionInput {
  /** -e values, volume-relative absolute paths; globs allowed (rsync patterns). */
  excludes: string[];
  /** -i values, volume-relative absolute paths. */
  includes: string[];
  /** false with --no-filter. */
  filter: boolean;
  /** Volume-relative directories whose contents are left out besides ALWAYS_EMPTIED (non-local mounts, -d). */
  emptied: string[];
}

export interface Selection {
  /** rsync filter rules, in order, each "+ PATTERN" or "- PATTERN". */
  rules: string[];
  /** rsync patterns of the sensitive filter → the original's glob, to report what the filter left out. */
  sensitive: Map<string, string>;
}

function trimSlash(p: string): string {
  return p.length > 1 ? p.replace(/\/+$/, '') : p;
}

export function buildSelection(i: SelectionInput): Selection {
  const rules: string[] = [];
  for (const e of i.excludes) rules.push(`- ${trimSlash(e)}`);
  const emptied = [...new Set([...ALWAYS_EMPTIED, ...i.emptied.map(trimSlash)])].filter((d) => d !== '/');
  for (const d of emptied) rules.push(`- ${d}/*`);
  for (const inc of i.includes) rules.push(`+ ${trimSlash(inc)}`);
  const sensitive = new Map<string, string>();
  if (i.filter) {
    for (const k of KEEP_LIST) {
      if (k.endsWith('*')) rules.push(`+ ${k}`, `+ ${k.replace(/\*$/, '')}.d/***`);
      else rules.push(`+ ${k}/***`);
    }
    for (const g of SENSITIVE_PATTERNS) {
      const p = rsyncPattern(g);
      sensitive.set(p, g);
      rules.push(`- ${p}`);
    }
  }
  return { rules, sensitive };
}

/** rsync arguments for the rules (one --filter each: patterns may hold spaces and commas). */
export function rsyncFilterArgs(rules: string[]): string[] {
  return rules.flatMap((r) => ['--filter', r]);
}

/** A host path inside the volume as the volume-relative absolute path rsync rules use; undefined if outside. */
export function volumeRelative(volume: string, path: string): string | undefined {
  if (volume === '/') return path;
  if (path === volume) return '/';
  return path.startsWith(volume + '/') ? path.slice(volume.length) : undefined;
}

export interface FilterHit { path: string; pattern: string; directory: boolean }

/** Parses rsync's --debug=FILTER1 line "[sender] hiding file a/x.pem because of pattern *.pem". */
export function parseFilterDebug(line: string): FilterHit | undefined {
  const m = /^\[sender\] hiding (file|directory|device|special file|symlink) (.*) because of pattern (.*?)(?:\/)?(?: \[per-dir merge\])?$/.exec(line);
  if (!m) return undefined;
  return { path: '/' + m[2], pattern: m[3], directory: m[1] === 'directory' };
}
