import { accessSync, constants } from 'node:fs';
import { unbundle } from '../bundle/unbundle.js';
import { DirectoryStore } from '../store/directory-store.js';
import { readManifest } from '../bundle/manifest-file.js';
import { createCommand, invalidValue, markMandatory, requireDirectory, requireFile, runCommand, type CommonOptions } from './command.js';
import { Reporter } from './reporter.js';
import { bundleDocument } from './result.js';

interface Flags extends CommonOptions {
  privatekey?: string;
  manifest?: string;
  source: string;
  destination: string;
  cert?: string;
}

const command = () => markMandatory(
  createCommand('ec2-unbundle', 'Recreate an image from its bundle: verify, decrypt and unpack the parts named by a manifest.')
    .option('-k, --privatekey <path>', 'The path to the PEM encoded RSA private key the bundle was made for.')
    .option('-m, --manifest <path>', 'The path to the manifest file.')
    .option('-s, --source <directory>', 'The directory containing the bundled AMI parts.', '.')
    .option('-d, --destination <directory>', 'The directory to write the image to.', '.')
    .option('--cert <path>', "Verify the manifest's signature with this PEM certificate before unbundling."),
  '--privatekey', '--manifest');

/** Runs the command on argv; resolves to its exit code. */
export function main(argv: string[] = process.argv): Promise<number> {
  return runCommand<Flags>(command(), argv, async (o, _cmd, signal) => {
    const privateKeyPath = requireFile(o.privatekey, '--privatekey');
    const manifestPath = requireFile(o.manifest, '--manifest');
    requireDirectory(o.source, '--source');
    requireDirectory(o.destination, '--destination');
    try {
      accessSync(o.destination, constants.W_OK);
    } catch {
      throw invalidValue('--destination', o.destination, 'Directory is not writable.');
    }
    if (o.cert !== undefined) requireFile(o.cert, '--cert');

    const reporter = new Reporter(o);
    let files: string[];
    try {
      ({ files } = await unbundle({
        manifest: { path: manifestPath },
        store: new DirectoryStore(o.source, { signal }),
        privateKeyPath,
        destination: o.destination,
        certPath: o.cert,
        onEvent: (e) => { if (e.type === 'progress') reporter.progress('Unbundling', e.bytes, e.totalBytes); },
        signal,
      }));
    } finally {
      reporter.stop();
    }
    reporter.line('Unbundle complete.');
    return { manifest: manifestPath, files, ...(await bundleDocument(await readManifest(manifestPath), o.source)) };
  });
}
