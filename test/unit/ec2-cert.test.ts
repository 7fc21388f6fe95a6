import { copyFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { join, sep } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ToolError, UsageError } from '../../src/errors.js';
import { PROJECT_CERT_DIR, SYSTEM_CERT_DIR, ec2CertFileName, findEc2Certificate } from '../../src/crypto/ec2-cert.js';
import { loadCertificate } from '../../src/crypto/keys.js';
import { cliErrorMessage } from '../../src/cli/errors.js';
import { scratch } from '../helpers/bundles.js';
import { AWS_CERTS, HAVE_AWS_CERTS, NO_AWS_CERTS_REASON, ROOT, skipNotice } from '../helpers/paths.js';

skipNotice(!HAVE_AWS_CERTS, NO_AWS_CERTS_REASON);

describe('ec2CertFileName', () => {
  it('maps regions to the certificate files the original ships', () => {
    expect(ec2CertFileName()).toBe('cert-ec2.pem');
    expect(ec2CertFileName('us-east-1')).toBe('cert-ec2.pem');
    expect(ec2CertFileName('eu-west-1')).toBe('cert-ec2.pem');
    expect(ec2CertFileName('us-gov-west-1')).toBe('cert-ec2-gov.pem');
    expect(ec2CertFileName('cn-north-1')).toBe('cert-ec2-cn-north-1.pem');
    expect(ec2CertFileName('cn-northwest-1')).toBe('cert-ec2-cn-north-1.pem');
  });
  it.skipIf(!HAVE_AWS_CERTS)("names files that exist among Amazon's certificates", () => {
    for (const r of ['us-east-1', 'us-gov-west-1', 'cn-north-1']) expect(existsSync(join(AWS_CERTS, ec2CertFileName(r)))).toBe(true);
  });
});

describe.skipIf(!HAVE_AWS_CERTS)('findEc2Certificate', () => {
  let tmp: { dir: string; cleanup: () => void };
  let home: string; let system: string; let project: string;
  /** Puts Amazon's certificate `file` into `dir` (a temp dir, never the repository). */
  const put = (dir: string, file: string) => {
    mkdirSync(dir, { recursive: true });
    copyFileSync(join(AWS_CERTS, file), join(dir, file));
    return join(dir, file);
  };
  beforeEach(() => {
    tmp = scratch('ec2cert');
    home = join(tmp.dir, 'home');
    system = join(tmp.dir, 'system');
    project = join(tmp.dir, 'project');
  });
  afterEach(() => tmp.cleanup());

  const find = (region?: string, env: NodeJS.ProcessEnv = { EC2_AMITOOL_HOME: home }) =>
    findEc2Certificate({ region, env, systemDir: system, projectDir: project });

  it('looks in $EC2_AMITOOL_HOME/etc/ec2/amitools, then the system install, then <project>/certs', () => {
    const inHome = put(join(home, 'etc', 'ec2', 'amitools'), 'cert-ec2.pem');
    const inSystem = put(system, 'cert-ec2.pem');
    const inProject = put(project, 'cert-ec2.pem');
    expect(find()).toBe(inHome);
    rmSync(inHome);
    expect(find()).toBe(inSystem);
    rmSync(inSystem);
    expect(find()).toBe(inProject);
    expect(loadCertificate(find()).publicKey.asymmetricKeyDetails?.modulusLength).toBe(1024);
  });

  it('ignores EC2_AMITOOL_HOME when it is not set', () => {
    put(join(home, 'etc', 'ec2', 'amitools'), 'cert-ec2.pem');
    const inProject = put(project, 'cert-ec2.pem');
    expect(find(undefined, {})).toBe(inProject);
  });

  it("picks the region's file, not another region's", () => {
    const dir = join(home, 'etc', 'ec2', 'amitools');
    put(dir, 'cert-ec2.pem');
    const gov = put(project, 'cert-ec2-gov.pem');
    expect(find('us-gov-west-1')).toBe(gov);
    const cn = put(dir, 'cert-ec2-cn-north-1.pem');
    expect(find('cn-northwest-1')).toBe(cn);
    expect(find('us-east-1')).toBe(join(dir, 'cert-ec2.pem'));
  });

  it('--ec2cert wins over every search location, and must exist', () => {
    put(join(home, 'etc', 'ec2', 'amitools'), 'cert-ec2.pem');
    const explicit = put(join(tmp.dir, 'mine'), 'cert-ec2-gov.pem');
    expect(findEc2Certificate({ explicit, env: { EC2_AMITOOL_HOME: home } })).toBe(explicit);
    const missing = join(tmp.dir, 'nope.pem');
    expect(() => findEc2Certificate({ explicit: missing })).toThrow(UsageError);
    expect(() => findEc2Certificate({ explicit: missing })).toThrow(`ec2CertPath has invalid value '${missing}': File does not exist or is not a file.`);
    // The library names its option; the CLI words the same error with the flag.
    let err: unknown;
    try { findEc2Certificate({ explicit: missing }); } catch (e) { err = e; }
    expect(cliErrorMessage(err)).toBe(`--ec2cert has invalid value '${missing}': File does not exist or is not a file.`);
    expect(() => findEc2Certificate({ explicit: tmp.dir })).toThrow(UsageError);
  });

  it('says in one line where to put the certificate when none is found', () => {
    let err: unknown;
    try {
      find('us-gov-west-1');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ToolError);
    const msg = (err as Error).message;
    expect(msg).not.toContain('\n');
    expect(msg).toBe(
      `EC2 certificate cert-ec2-gov.pem not found: copy Amazon's cert-ec2-gov.pem (from the original ec2-ami-tools, etc/ec2/amitools/) ` +
        `into ${join(project, 'cert-ec2-gov.pem')} or $EC2_AMITOOL_HOME/etc/ec2/amitools/, or pass --ec2cert`,
    );
  });

  it("defaults: the system install path and the repository's certs/ folder", () => {
    expect(SYSTEM_CERT_DIR).toBe('/opt/aws/amitools/ec2/etc/ec2/amitools');
    expect(PROJECT_CERT_DIR).toBe(join(ROOT, 'certs') + sep);
    expect(existsSync(join(PROJECT_CERT_DIR, 'README.md'))).toBe(true);
  });
});
