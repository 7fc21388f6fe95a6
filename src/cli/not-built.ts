import { EXIT_RUNTIME } from './errors.js';

/** What a command of the suite that is not built yet does: say so and fail. */
export function notBuiltYet(command: string): never {
  process.stderr.write(`${command}: not implemented yet in this release of amitools; use the original ec2-ami-tools for now.\n`);
  process.exit(EXIT_RUNTIME);
}
