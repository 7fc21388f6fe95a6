import { COPYRIGHT, MANIFEST_VERSION_COMPACT, TOOL_NAME, TOOL_VERSION } from './version.js';
import { createCommand, runCommand } from './command.js';

const cmd = createCommand('ec2-ami-tools-version', 'Print the version of the tools and of the manifest format they write.');

await runCommand(cmd, async () => {
  process.stdout.write(`${TOOL_VERSION} ${MANIFEST_VERSION_COMPACT} (${TOOL_NAME})\n${COPYRIGHT}\n`);
});
