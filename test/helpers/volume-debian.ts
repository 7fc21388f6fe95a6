import { spawn } from 'node:child_process';

export { DEBIAN_CACHE, debianMirror, ensureDebianTree } from './debian-tree.mjs';

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
