import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A minimal Debian bookworm root filesystem with a kernel, an initramfs and GRUB 2's i386-pc modules, built with
 * debootstrap once and cached (about a minute to build; reused while its marker says it is complete).
 */
export const DEBIAN_CACHE = process.env.AMITOOLS_DEBIAN_CACHE ?? '/var/cache/amitools-test/debootstrap-bookworm';
const MARKER = '.amitools-complete';
const CACHE_VERSION = 'amitools debootstrap cache v2 (pruned)';

/** The Debian mirror apt is configured with (deb822 .sources or one-line sources.list). */
export function debianMirror(): string {
  const files: string[] = [];
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

function sh(cmd: string, args: string[]): void {
  execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive', LC_ALL: 'C' } });
}

/** Returns the cached tree, building it first if it is missing or incomplete. */
export function ensureDebianTree(): string {
  const marker = join(DEBIAN_CACHE, MARKER);
  if (existsSync(marker) && readFileSync(marker, 'utf8').trim() === CACHE_VERSION) return DEBIAN_CACHE;
  const partial = `${DEBIAN_CACHE}.partial`;
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
  return DEBIAN_CACHE;
}

/**
 * Drops what the boot test never uses (the initramfs already holds the modules a boot needs): driver modules for
 * hardware qemu doesn't emulate, documentation, locales, apt lists. Halves what has to be bundled.
 */
function pruneTree(root: string): void {
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

/** The init the boot test boots into: a marker, the root mount, then power off. */
export const BOOT_MARKER = 'AMITOOLS-BOOT-MARKER: init is running';

/** A -S script adding the test init and a GRUB 2 menu that boots it with the root on the first virtio partition. */
export function bootTestScript(): string {
  return `#!/bin/sh
set -e
T="$1"
cat > "$T/sbin/boot-marker" <<'INIT'
#!/bin/sh
mountpoint -q /proc || mount -t proc proc /proc
echo "${BOOT_MARKER}"
echo "ROOTLINE: $(grep -m1 ' / ' /proc/mounts)"
echo o > /proc/sysrq-trigger
sleep 60
INIT
chmod 755 "$T/sbin/boot-marker"
mkdir -p "$T/boot/grub"
cat > "$T/boot/grub/grub.cfg" <<'CFG'
set timeout=0
menuentry 'amitools boot test' {
  insmod part_msdos
  insmod part_gpt
  insmod ext2
  linux /vmlinuz root=/dev/vda1 ro console=ttyS0 init=/sbin/boot-marker panic=-1
  initrd /initrd.img
}
CFG
`;
}

/** Boots a raw disk image under qemu (software emulation, BIOS, no -kernel) and returns the serial console. */
export function bootImage(image: string, timeoutMs: number): Promise<{ console: string; timedOut: boolean; code: number | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn('qemu-system-x86_64', [
      '-accel', 'tcg,thread=multi', '-smp', '2', '-m', '1024', '-nographic', '-no-reboot',
      '-drive', `file=${image},format=raw,if=virtio`,
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let timedOut = false;
    child.stdout.on('data', (d) => (out += d.toString('latin1')));
    child.stderr.on('data', (d) => (out += d.toString('latin1')));
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, timeoutMs);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code) => { clearTimeout(timer); resolve({ console: out, timedOut, code }); });
  });
}
