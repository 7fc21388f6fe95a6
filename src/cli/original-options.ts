/**
 * The long options of Amazon's ec2-ami-tools 1.5.3, per command, as its --help lists them (test/fixtures/original-help;
 * a test keeps this list equal to those files). When a prefix is ambiguous only because of an option we added, the
 * original's option wins: a script that worked with the original keeps working.
 */
export const ORIGINAL_LONG_OPTIONS: Readonly<Record<string, readonly string[]>> = {
  'ec2-ami-tools-version': [],
  'ec2-bundle-image': ['cert', 'privatekey', 'user', 'image', 'help', 'version', 'manual', 'batch', 'debug', 'destination', 'ec2cert', 'arch', 'productcodes', 'no-size-checks', 'kernel', 'ramdisk', 'block-device-mapping', 'prefix'],
  'ec2-bundle-vol': ['cert', 'privatekey', 'user', 'help', 'version', 'manual', 'batch', 'debug', 'destination', 'ec2cert', 'arch', 'productcodes', 'no-size-checks', 'kernel', 'ramdisk', 'block-device-mapping', 'all', 'exclude', 'include', 'no-filter', 'prefix', 'clone-only', 'size', 'inherit', 'no-inherit', 'volume', 'fstab', 'grub-config', 'partition', 'script', 'generate-fstab'],
  'ec2-delete-bundle': ['bucket', 'access-key', 'secret-key', 'delegation-token', 'help', 'version', 'manual', 'batch', 'debug', 'url', 'region', 'sigv', 'manifest', 'prefix', 'clear', 'retry', 'yes'],
  'ec2-download-bundle': ['bucket', 'access-key', 'secret-key', 'delegation-token', 'privatekey', 'help', 'version', 'manual', 'batch', 'debug', 'url', 'region', 'sigv', 'manifest', 'prefix', 'directory', 'retry'],
  'ec2-migrate-manifest': ['cert', 'privatekey', 'manifest', 'help', 'version', 'manual', 'batch', 'debug', 'access-key', 'secret-key', 'ec2cert', 'kernel', 'ramdisk', 'no-mapping', 'region'],
  'ec2-unbundle': ['privatekey', 'manifest', 'help', 'version', 'manual', 'batch', 'debug', 'source', 'destination'],
  'ec2-upload-bundle': ['bucket', 'access-key', 'secret-key', 'delegation-token', 'manifest', 'help', 'version', 'manual', 'batch', 'debug', 'url', 'region', 'sigv', 'acl', 'directory', 'part', 'retry', 'skipmanifest', 'location'],
};
