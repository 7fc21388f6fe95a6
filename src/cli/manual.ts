import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const MAN_DIR = fileURLToPath(new URL('../../man/', import.meta.url));

/** The man page of a command as plain text (a small roff subset: what man/ uses). */
export function manualText(command: string): string {
  const roff = readFileSync(join(MAN_DIR, `${command}.1`), 'utf8');
  const out: string[] = [];
  let indent = '';
  for (const raw of roff.split('\n')) {
    const line = raw.replace(/\\-/g, '-').replace(/\\f[BIRP]/g, '').replace(/\\\\/g, '\\').replace(/\\\(em/g, '--');
    const m = /^\.(\w+)\s*(.*)$/.exec(line);
    if (!m) {
      if (!line.startsWith('.\\"')) out.push(indent + line);
      continue;
    }
    const [, macro, rest] = m;
    const args = rest.replace(/"/g, '');
    switch (macro) {
      case 'TH': out.push(args.split(/\s+/)[0] ?? ''); break;
      case 'SH': out.push('', args); indent = '       '; break;
      case 'SS': out.push('', '   ' + args); break;
      case 'PP': case 'P': case 'LP': out.push(''); break;
      case 'TP': out.push(''); break;
      case 'B': case 'I': case 'BR': case 'IR': case 'BI': case 'IB': out.push(indent + args); break;
      case 'nf': case 'fi': case 'RS': case 'RE': case 'in': case 'sp': break;
      default: break;
    }
  }
  return out.join('\n').replace(/\n{3,}/g, '\n\n').trim() + '\n';
}
