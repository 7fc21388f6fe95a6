import { ToolError } from '../cli/errors.js';

/** A part or manifest name from a manifest must be a plain file name: a hostile manifest must not reach outside -d. */
export function assertPlainFileName(name: string, source: string): void {
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\\') || name.includes('\0') || name.includes('..')) {
    throw new ToolError(`refusing manifest ${source}: part file name '${name}' is not a plain file name (it contains '/', '\\', '..' or is absolute)`);
  }
}
