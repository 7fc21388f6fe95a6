import { createCommand, invalidValue, markMandatory, requireDirectory, requireFile, requireOption, runCommand, type CommonOptions } from './command.js';
import { Reporter } from './reporter.js';
import { addS3Options, targetFromFlags, type S3Flags } from './s3-options.js';
import { bundleDocument } from './result.js';
import { readManifest } from '../bundle/manifest-file.js';
import { join } from 'node:path';
import { PLAIN_FILE_NAME_RULE, isPlainFileName } from '../format/part-name.js';
import { displayText } from '../format/display.js';

interface Options extends CommonOptions, Partial<S3Flags> { profile?: string; privatekey?: string; manifest?: string; prefix?: string; directory?: string }

const command = () => markMandatory(
  addS3Options(createCommand('ec2-download-bundle', 'Download a bundled AMI from S3: the manifest, then every part, each verified.'))
    .option('-k, --privatekey <PATH>', 'Your private key: needed only to decrypt a legacy encrypted manifest.')
    .option('-m, --manifest <NAME>', 'The manifest object name, under the key prefix (default: PREFIX.manifest.xml).')
    .option('-p, --prefix <PREFIX>', 'The bundle file name prefix (default: image).')
    .option('-d, --directory <DIRECTORY>', 'The directory to write to; it must exist (default: .).'),
  '--bucket');

/** Runs the command on argv; resolves to its exit code. */
export function main(argv: string[] = process.argv): Promise<number> {
  return runCommand<Options>(command(), argv, async (opts, _cmd, signal) => {
    const bucket = requireOption(opts.bucket, '--bucket');
    const directory = opts.directory ?? '.';
    requireDirectory(directory, '--directory');
    if (opts.privatekey !== undefined) requireFile(opts.privatekey, '--privatekey');
    for (const [flag, v] of [['--manifest', opts.manifest], ['--prefix', opts.prefix]] as const) {
      if (v !== undefined && !isPlainFileName(v)) {
        throw invalidValue(flag, v, `a plain name is required (${PLAIN_FILE_NAME_RULE}); put key prefixes in -b BUCKET/key/prefix`);
      }
    }
    const manifestName = opts.manifest ?? `${opts.prefix ?? 'image'}.manifest.xml`;
    const reporter = new Reporter(opts);
    const target = await targetFromFlags({ ...opts, bucket }, reporter);
    try {
      const [{ downloadBundle }, { S3Store }] = await Promise.all([import('../bundle/download-bundle.js'), import('../store/s3-store.js')]);
      const store = new S3Store(target, { signal });
      const result = await downloadBundle({
        source: store, manifestName, directory, privateKeyPath: opts.privatekey, concurrency: target.concurrency,
        onEvent: (e) => {
          if (e.type === 'progress') reporter.progress('Downloading', e.bytes, e.totalBytes, `${e.parts}/${e.totalParts} parts`);
          else if (e.type === 'part') reporter.line(`Downloaded ${displayText(e.name)} from ${target.bucket}`);
          else if (e.type === 'warning') reporter.warn(e.message);
          else if (e.type === 'step' && e.step === 'downloading-manifest') reporter.line(`Downloading manifest ${displayText(store.key(e.name!))} from ${target.bucket} to ${displayText(join(directory, e.name!))} ...`);
          else if (e.type === 'step' && e.step === 'decrypting-manifest') reporter.line('Decrypting manifest ...');
          else if (e.type === 'step' && e.step === 'downloading-part') reporter.line(`Downloading part ${displayText(store.key(e.name!))} to ${displayText(join(directory, e.name!))} ...`);
        },
        signal,
      });
      reporter.stop();
      reporter.line(`Downloaded ${result.parts.length} part(s); unbundle with: ec2-unbundle -m ${result.manifestPath} -k KEY -s ${directory}`);
      return {
        source: `s3://${target.bucket}/${target.keyPrefix}${manifestName}`, region: target.region, manifest: result.manifestPath,
        ...(await bundleDocument(await readManifest(result.manifestPath), directory)),
      };
    } finally {
      reporter.stop();
      target.client.destroy();
    }
  });
}
