// Which /etc/fstab entries name instance-store volumes, which an EBS-backed instance does not have: left in, they
// make the boot wait for devices that never appear. Pure: the caller reads and writes the file.

/** An entry taken out, with its line number (1-based) and why. */
export interface RemovedEntry { line: number; text: string; reason: string }

export interface FstabPlan {
  /** The file without the removed entries (comments, blank lines and every other entry as they were). */
  text: string;
  removed: RemovedEntry[];
}

const INSTANCE_STORE_DEVICE = /^\/dev\/(?:sd|xvd)[b-z]\d*$/;

/** /dev/sdX and /dev/xvdX name the same device (the kernel's Xen name of the block device mapping's). */
function deviceKey(dev: string): string {
  return dev.replace(/^\/dev\//, '').replace(/^xvd/, 'sd');
}

function hasOption(options: string | undefined, name: string): boolean {
  return (options ?? '').split(',').some((o) => o === name);
}

/**
 * Plans the edit: an entry goes when its device is an instance-store device name (/dev/sd[b-z], /dev/xvd[b-z] and
 * their partitions) or a device the manifest maps to an ephemeral or swap volume (`mapped`, e.g. sda2, sda3), its
 * label is ephemeral*, it carries comment=cloudconfig (cloud-init's mark on the entries it adds for instance
 * stores), or its mount point is /media/ephemeral*.
 */
export function planFstab(text: string, mapped: readonly string[] = []): FstabPlan {
  const mappedKeys = new Set(mapped.map(deviceKey));
  const lines = text.split('\n');
  const removed: RemovedEntry[] = [];
  const kept: string[] = [];
  lines.forEach((line, i) => {
    const fields = line.trim().startsWith('#') ? [] : line.trim().split(/\s+/).filter(Boolean);
    const [spec, file, , options] = fields;
    let reason: string | undefined;
    if (spec !== undefined) {
      if (INSTANCE_STORE_DEVICE.test(spec)) reason = 'an instance-store device';
      else if (spec.startsWith('/dev/') && mappedKeys.has(deviceKey(spec))) reason = "an ephemeral or swap device in the manifest's block device mapping";
      else if (/^LABEL=ephemeral/i.test(spec)) reason = 'an instance-store label';
      else if (hasOption(options, 'comment=cloudconfig')) reason = 'added by cloud-init for an instance store';
      else if (/^\/media\/ephemeral/.test(file ?? '')) reason = 'an instance-store mount point';
    }
    if (reason) removed.push({ line: i + 1, text: line, reason });
    else kept.push(line);
  });
  return { text: kept.join('\n'), removed };
}
