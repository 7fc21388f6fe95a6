import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';

/** Where Debian's grub-legacy package keeps GRUB 0.97's stage files. */
export const LEGACY_STAGES = '/usr/lib/grub/x86_64-pc';

/**
 * The original ec2-bundle-vol's way: GRUB 0.97's own shell runs `setup (hd0)` on the image file (it reads the
 * filesystem itself and writes stage1 + the embedded stage1.5). Returns the shell's output; throws if it failed.
 */
export function grubShellSetup(image: string, deviceMap: string): string {
  writeFileSync(deviceMap, `(hd0) ${image}\n`);
  const r = spawnSync('grub', ['--batch', '--no-floppy', `--device-map=${deviceMap}`], {
    input: 'root (hd0,0)\nsetup (hd0)\nquit\n', encoding: 'utf8', timeout: 60_000,
  });
  const out = `${r.stdout}${r.stderr}`;
  if (r.error || !/Running "install [^\n]*succeeded/.test(out)) throw new Error(`grub setup failed: ${r.error?.message ?? out}`);
  return out;
}
