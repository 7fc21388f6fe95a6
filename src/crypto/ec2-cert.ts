import { statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ToolError, invalidOption } from '../errors.js';

/** Where the original installs look, under $EC2_AMITOOL_HOME or the system install. */
const CERT_SUBDIR = join('etc', 'ec2', 'amitools');
export const SYSTEM_CERT_DIR = join('/opt/aws/amitools/ec2', CERT_SUBDIR);
/** `<project>/certs/`: ships empty (Amazon's certificates may not be redistributed); users drop them there. */
export const PROJECT_CERT_DIR = fileURLToPath(new URL('../../certs/', import.meta.url));

/** EC2's certificate file for a region, as the original names them. */
export function ec2CertFileName(region?: string): string {
  if (region === 'us-gov-west-1') return 'cert-ec2-gov.pem';
  if (region === 'cn-north-1' || region === 'cn-northwest-1') return 'cert-ec2-cn-north-1.pem';
  return 'cert-ec2.pem';
}

const isFile = (path: string) => {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
};

/**
 * The EC2 certificate to encrypt for: --ec2cert; else $EC2_AMITOOL_HOME/etc/ec2/amitools/<file>;
 * else /opt/aws/amitools/ec2/etc/ec2/amitools/<file>; else <project>/certs/<file>.
 * `systemDir` and `projectDir` exist for tests.
 */
export function findEc2Certificate(opts: {
  explicit?: string; region?: string; env?: NodeJS.ProcessEnv; systemDir?: string; projectDir?: string;
}): string {
  if (opts.explicit !== undefined) {
    if (!isFile(opts.explicit)) throw invalidOption('ec2CertPath', opts.explicit, 'File does not exist or is not a file.');
    return opts.explicit;
  }
  const file = ec2CertFileName(opts.region);
  const home = (opts.env ?? process.env).EC2_AMITOOL_HOME;
  const candidates = [
    ...(home ? [join(home, CERT_SUBDIR, file)] : []),
    join(opts.systemDir ?? SYSTEM_CERT_DIR, file),
    join(opts.projectDir ?? PROJECT_CERT_DIR, file),
  ];
  const found = candidates.find(isFile);
  if (found) return found;
  throw new ToolError(
    `EC2 certificate ${file} not found: copy Amazon's ${file} (from the original ec2-ami-tools, etc/ec2/amitools/) ` +
      `into ${join(opts.projectDir ?? PROJECT_CERT_DIR, file)} or $EC2_AMITOOL_HOME/${CERT_SUBDIR}/, or pass --ec2cert`,
  );
}
