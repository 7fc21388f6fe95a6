// Preloaded into a command under test (node --import): writes its peak RSS (VmHWM, kB) to a file at exit.
import { readFileSync, writeFileSync } from 'node:fs';

process.on('exit', () => {
  const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
  if (m && process.env.AMITOOLS_TEST_RSS_FILE) writeFileSync(process.env.AMITOOLS_TEST_RSS_FILE, m[1]);
});
