// The cached Debian root filesystem of the boot test, and the OS image the benchmark bundles from it. Plain
// JavaScript so that bench/bundle.mjs (no TypeScript at run time) builds and reuses the same cache as the tests.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * A minimal Debian bookworm root filesystem with a kernel, an initramfs and GRUB 2's i386-pc modules, built with
 * debootstrap once and cached (about a minute to build; reused while its marker says it is complete).
 */
export const DEBIAN_CACHE = process.env.AMITOOLS_DEBIAN_CACHE ?? '/var/cache/amitools-test/debootstrap-bookworm';
const MARKER = '.amitools-complete';
const CACHE_VERSION = 'amitools debootstrap cache v2 (pruned)';

/** The Debian mirror apt is configured with (deb822 .sources or one-line sources.list). */
export function debianMirror() {
  const files = [];
  if (existsSync('/etc/apt/sources.list')) files.push('/etc/apt/sources.list');
  const d = '/etc/apt/sources.list.d';
  if (existsSync(d)) for (const f of readdirSync(d).sort()) if (/\.(list|sources)$/.test(f)) files.push(join(d, f));
  for (const f of files) {
    const text = readFileSync(f, 'utf8');
    for (const m of text.matchAll(/^\s*URIs:\s*(\S+)/gm)) if (/debian\/?$/.test(m[1]) && !/security/.test(m[1])) return m[1];
    for (const m of text.matchAll(/^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+bookworm\b/gm)) if (!/security/.test(m[1])) return m[1];
  }
  return 'http://deb.debian.org/debian';
}

function sh(cmd, args) {
  execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive', LC_ALL: 'C' } });
}

/**
 * Runs `build` holding a lock beside `path`, so test files running at the same time build a cache once, one after
 * the other (a second builder would remove the first one's partial tree under it). A lock whose holder died is broken.
 */
function withBuildLock(path, build) {
  const lock = `${path}.lock`;
  mkdirSync(dirname(path), { recursive: true });
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
    }
    let holder = 0;
    try {
      holder = Number(readFileSync(join(lock, 'pid'), 'utf8'));
    } catch {
      // not written yet: the holder has just taken the lock
    }
    if (holder > 0 && !isAlive(holder)) rmSync(lock, { recursive: true, force: true });
    else Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1000);
  }
  try {
    writeFileSync(join(lock, 'pid'), String(process.pid));
    return build();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

function isAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

function treeIsComplete() {
  const marker = join(DEBIAN_CACHE, MARKER);
  return existsSync(marker) && readFileSync(marker, 'utf8').trim() === CACHE_VERSION;
}

/** Returns the cached tree, building it first if it is missing or incomplete. */
export function ensureDebianTree() {
  if (!treeIsComplete()) withBuildLock(DEBIAN_CACHE, () => treeIsComplete() || buildDebianTree());
  return DEBIAN_CACHE;
}

function buildDebianTree() {
  const partial = `${DEBIAN_CACHE}.partial`;
  // A build that was killed may have left /proc mounted in its partial tree.
  try {
    sh('umount', [join(partial, 'proc')]);
  } catch {
    // not mounted
  }
  rmSync(partial, { recursive: true, force: true });
  sh('debootstrap', ['--variant=minbase', 'bookworm', partial, debianMirror()]);
  copyFileSync('/etc/resolv.conf', join(partial, 'etc', 'resolv.conf'));
  // /proc only for the package install (the kernel's postinst needs it), unmounted right after.
  sh('mount', ['-t', 'proc', 'proc', join(partial, 'proc')]);
  try {
    sh('chroot', [partial, 'apt-get', 'install', '-y', '-q', '--no-install-recommends', 'linux-image-amd64', 'initramfs-tools', 'zstd', 'grub-pc-bin']);
    sh('chroot', [partial, 'apt-get', 'clean']);
  } finally {
    sh('umount', [join(partial, 'proc')]);
  }
  pruneTree(partial);
  rmSync(DEBIAN_CACHE, { recursive: true, force: true });
  execFileSync('mv', [partial, DEBIAN_CACHE]);
  writeFileSync(join(DEBIAN_CACHE, MARKER), CACHE_VERSION + '\n');
}

/**
 * Drops what the boot test never uses (the initramfs already holds the modules a boot needs): driver modules for
 * hardware qemu doesn't emulate, documentation, locales, apt lists. Halves what has to be bundled.
 */
function pruneTree(root) {
  for (const kernel of readdirSync(join(root, 'usr/lib/modules'))) {
    const k = join(root, 'usr/lib/modules', kernel, 'kernel');
    for (const d of ['sound', 'net', 'drivers/gpu', 'drivers/media', 'drivers/net', 'drivers/infiniband', 'drivers/usb', 'drivers/staging', 'drivers/iio', 'drivers/hid', 'drivers/input', 'drivers/bluetooth', 'drivers/isdn', 'drivers/mtd']) {
      rmSync(join(k, d), { recursive: true, force: true });
    }
  }
  for (const d of ['usr/share/doc', 'usr/share/locale', 'usr/share/man', 'usr/share/info']) rmSync(join(root, d), { recursive: true, force: true });
  const lists = join(root, 'var/lib/apt/lists');
  for (const f of readdirSync(lists, { withFileTypes: true })) if (f.isFile() && f.name !== 'lock') rmSync(join(lists, f.name), { force: true });
}

/** The benchmark's real OS image: the Debian tree in a 2 GiB ext4 filesystem made with `mke2fs -d` (sparse). */
export const OS_IMAGE = process.env.AMITOOLS_OS_IMAGE ?? join(dirname(DEBIAN_CACHE), 'debian-ext4-2g.img');
const OS_IMAGE_VERSION = `${CACHE_VERSION}; mke2fs -t ext4 -d, 2 GiB`;

/** Returns the cached OS image, building it (and the tree) first if missing. */
export function ensureOsImage() {
  const tree = ensureDebianTree();
  const marker = `${OS_IMAGE}.complete`;
  if (existsSync(OS_IMAGE) && existsSync(marker) && readFileSync(marker, 'utf8').trim() === OS_IMAGE_VERSION) return OS_IMAGE;
  const partial = `${OS_IMAGE}.partial`;
  rmSync(partial, { force: true });
  execFileSync('mke2fs', ['-F', '-q', '-t', 'ext4', '-b', '4096', '-U', '0b5e55ed-0000-4000-8000-000000000001', '-E', 'hash_seed=0b5e55ed-0000-4000-8000-000000000002',
    '-d', tree, partial, '2G'], { stdio: ['ignore', 'ignore', 'pipe'] });
  renameSync(partial, OS_IMAGE);
  writeFileSync(marker, OS_IMAGE_VERSION + '\n');
  return OS_IMAGE;
}
