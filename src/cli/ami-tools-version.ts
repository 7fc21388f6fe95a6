import { COPYRIGHT, MANIFEST_VERSION_COMPACT, TOOL_NAME, TOOL_VERSION } from '../version.js';
import { createCommand, runCommand } from './command.js';

const command = () =>
  createCommand('ec2-ami-tools-version', 'Print the version of the tools and of the manifest format they write.');

/** Runs the command on argv; resolves to its exit code. */
export function main(argv: string[] = process.argv): Promise<number> {
  return runCommand(command(), argv, async (o) => {
    if (o.output !== 'json') process.stdout.write(`${TOOL_VERSION} ${MANIFEST_VERSION_COMPACT} (${TOOL_NAME})\n${COPYRIGHT}\n`);
    return { name: TOOL_NAME, version: TOOL_VERSION, manifestVersion: MANIFEST_VERSION_COMPACT };
  });
}
