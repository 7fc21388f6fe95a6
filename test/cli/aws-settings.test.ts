// The AWS CLI's settings, as users of the AWS toolbox expect them: region chain, profiles, configured endpoints,
// proxies from the environment, CA bundles. s3rver ignores regions, so the region actually used is read from the
// SigV4 credential scope of each request, as a recording proxy in front of s3rver sees it.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { runCli } from '../helpers/run.js';
import { scratch } from '../helpers/bundles.js';
import { startS3rver, type S3rver } from '../helpers/s3rver.js';
import { errorBody, startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { startForwardProxy, type ForwardProxy } from '../helpers/http-proxy.js';
import { checkClient } from '../helpers/s3-fixture.js';

const work = scratch('aws-settings');
const home = join(work.dir, 'home');
const emptyHome = join(work.dir, 'empty-home');
let server: S3rver;
let proxy: FaultProxy;

/** Nothing from the machine's own AWS settings; the temporary HOME's files instead. */
const CLEAN: NodeJS.ProcessEnv = Object.fromEntries([
  'AWS_REGION', 'AWS_DEFAULT_REGION', 'AWS_PROFILE', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN',
  'AWS_CONFIG_FILE', 'AWS_SHARED_CREDENTIALS_FILE', 'AWS_ENDPOINT_URL', 'AWS_ENDPOINT_URL_S3', 'AWS_CA_BUNDLE',
  'HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy',
].map((k) => [k, undefined]));
const env = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({ ...CLEAN, HOME: home, AWS_EC2_METADATA_DISABLED: 'true', ...extra });

beforeAll(async () => {
  mkdirSync(join(home, '.aws'), { recursive: true });
  mkdirSync(emptyHome);
  writeFileSync(join(home, '.aws', 'config'), [
    '[default]', 'region = eu-west-2',
    '[profile other]', 'region = ap-south-1',
    '[profile wrong]', 'region = sa-east-1',
    '[profile noregion]', 'output = json',
  ].join('\n') + '\n');
  writeFileSync(join(home, '.aws', 'credentials'), [
    '[default]', 'aws_access_key_id = S3RVER', 'aws_secret_access_key = S3RVER',
    '[other]', 'aws_access_key_id = S3RVER', 'aws_secret_access_key = S3RVER',
    '[noregion]', 'aws_access_key_id = S3RVER', 'aws_secret_access_key = S3RVER',
    '[wrong]', 'aws_access_key_id = NOTS3RVER', 'aws_secret_access_key = nope',
  ].join('\n') + '\n');
  server = await startS3rver();
  proxy = await startFaultProxy(server.url);
  const c = checkClient(server.url);
  for (const b of ['settings', 'regional']) await c.send(new CreateBucketCommand({ Bucket: b }));
});
afterAll(async () => {
  await proxy?.stop();
  await server?.stop();
  work.cleanup();
});
beforeEach(() => { proxy.log.length = 0; proxy.canned = undefined; });

/** The region of each request's SigV4 credential scope, in order. */
const scopes = () => proxy.log.map((q) => /Credential=[^/]+\/\d{8}\/([^/]+)\/s3\//.exec(String(q.headers.authorization ?? ''))?.[1]);

/** A cheap command that talks to S3: list the bundle "none" in a bucket (nothing to delete). */
const list = (bucket: string, args: string[], e: NodeJS.ProcessEnv) =>
  runCli('ec2-delete-bundle', ['-b', bucket, '-p', 'none', '-y', '--batch', ...args], { env: e });

describe('region: each source in the AWS CLI\'s order', () => {
  const cases: [string, string[], NodeJS.ProcessEnv, string][] = [
    ['--region over AWS_REGION', ['--region', 'us-west-1'], { AWS_REGION: 'eu-west-3', AWS_DEFAULT_REGION: 'ca-central-1' }, 'us-west-1'],
    ['AWS_REGION over AWS_DEFAULT_REGION', [], { AWS_REGION: 'eu-west-3', AWS_DEFAULT_REGION: 'ca-central-1' }, 'eu-west-3'],
    ['AWS_DEFAULT_REGION over the profile', [], { AWS_DEFAULT_REGION: 'ca-central-1' }, 'ca-central-1'],
    ['the default profile\'s region', [], {}, 'eu-west-2'],
    ['AWS_PROFILE\'s region', [], { AWS_PROFILE: 'other' }, 'ap-south-1'],
    ['--profile over AWS_PROFILE', ['--profile', 'other'], { AWS_PROFILE: 'wrong' }, 'ap-south-1'],
    ['the profile in AWS_CONFIG_FILE', [], { HOME: emptyHome, AWS_CONFIG_FILE: join(home, '.aws', 'config'), AWS_SHARED_CREDENTIALS_FILE: join(home, '.aws', 'credentials'), AWS_PROFILE: 'other' }, 'ap-south-1'],
  ];
  it.each(cases)('%s', async (_name, args, extra, region) => {
    const r = await list('settings', ['--url', proxy.url, ...args], env(extra));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('No files to delete.');
    expect(scopes().length).toBeGreaterThan(0);
    expect(new Set(scopes())).toEqual(new Set([region]));
  });

  it("an existing bucket's own region when nothing names one: S3's answer to HeadBucket", async () => {
    // What S3 does for a request signed for another region than the bucket's: 301 with x-amz-bucket-region.
    proxy.canned = (req) => {
      const region = /Credential=[^/]+\/\d{8}\/([^/]+)\//.exec(String(req.headers.authorization ?? ''))?.[1];
      if (!req.path.startsWith('/regional') || region === 'ap-northeast-2') return undefined;
      return { status: 301, headers: { 'x-amz-bucket-region': 'ap-northeast-2' }, body: req.method === 'HEAD' ? '' : errorBody('PermanentRedirect', 'elsewhere') };
    };
    const r = await list('regional', ['--url', proxy.url, '--debug'], env({ HOME: emptyHome, AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' }));
    expect(r.code, r.stderr).toBe(0);
    expect(proxy.log.map((q) => q.method)).toEqual(['HEAD', 'GET']);
    expect(scopes()).toEqual(['us-east-1', 'ap-northeast-2']);
    expect(r.stderr).toMatch(/DEBUG: endpoint .*, region ap-northeast-2 \(from the bucket's own region\)/);
  });

  it('us-east-1 when nothing names a region and the bucket does not say', async () => {
    const r = await list('settings', ['--url', proxy.url, '--debug'], env({ HOME: emptyHome, AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' }));
    expect(r.code, r.stderr).toBe(0);
    expect(new Set(scopes())).toEqual(new Set(['us-east-1']));
    expect(r.stderr).toMatch(/region us-east-1 \(from the default\)/);
  });

  it('a region from the environment that is not the bucket\'s is reported with the right one', async () => {
    proxy.canned = (req) => {
      const region = /Credential=[^/]+\/\d{8}\/([^/]+)\//.exec(String(req.headers.authorization ?? ''))?.[1];
      if (!req.path.startsWith('/regional') || region === 'ap-northeast-2') return undefined;
      return { status: 301, headers: { 'x-amz-bucket-region': 'ap-northeast-2' }, body: errorBody('PermanentRedirect', 'elsewhere') };
    };
    const r = await list('regional', ['--url', proxy.url], env({ AWS_REGION: 'eu-west-3' }));
    expect(r.code).toBe(254);
    expect(r.stderr).toMatch(/bucket regional is in region ap-northeast-2, not eu-west-3 .*--region ap-northeast-2/);
  });
});

describe('profiles and credentials', () => {
  it("--profile's credentials win over AWS_PROFILE's and over keys in the environment", async () => {
    const withProfile = await list('settings', ['--url', proxy.url, '--profile', 'wrong'], env({ AWS_PROFILE: 'other', AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' }));
    expect(withProfile.code).toBe(254);
    expect(withProfile.stderr).toMatch(/InvalidAccessKeyId/);
    // Without --profile, keys in the environment win over AWS_PROFILE (the AWS CLI's order).
    const envKeys = await list('settings', ['--url', proxy.url], env({ AWS_PROFILE: 'wrong', AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' }));
    expect(envKeys.code, envKeys.stderr).toBe(0);
    const fromAwsProfile = await list('settings', ['--url', proxy.url], env({ AWS_PROFILE: 'wrong' }));
    expect(fromAwsProfile.stderr).toMatch(/InvalidAccessKeyId/);
  });

  it('refuses a --profile that neither file has', async () => {
    const r = await list('settings', ['--url', proxy.url, '--profile', 'nosuch'], env());
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^--profile has invalid value 'nosuch': no such profile in .*config or .*credentials\n/);
    expect(proxy.log).toEqual([]);
  });
});

describe('configured endpoints and --debug', () => {
  it.each([
    ['AWS_ENDPOINT_URL_S3', { AWS_ENDPOINT_URL_S3: 'PROXY', AWS_ENDPOINT_URL: 'http://127.0.0.1:9' }],
    ['AWS_ENDPOINT_URL', { AWS_ENDPOINT_URL: 'PROXY' }],
  ] as const)('sends the requests to %s and --debug names it', async (name, extra) => {
    const e = Object.fromEntries(Object.entries(extra).map(([k, v]) => [k, v === 'PROXY' ? proxy.url : v]));
    const r = await list('settings', ['--debug'], env(e));
    expect(r.code, r.stderr).toBe(0);
    expect(proxy.log.length).toBeGreaterThan(0);
    expect(r.stderr).toContain(`DEBUG: endpoint ${proxy.url}/settings (${name})`);
    expect(r.stderr).toContain(`DEBUG: GET http://127.0.0.1:${new URL(proxy.url).port}/settings`);
  });

  it("takes the profile's endpoint_url, and --url/--endpoint-url over all of them", async () => {
    writeFileSync(join(work.dir, 'endpoint-config'), `[default]\nregion = eu-west-2\nendpoint_url = ${proxy.url}\n`);
    const r = await list('settings', ['--debug'], env({ AWS_CONFIG_FILE: join(work.dir, 'endpoint-config') }));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/DEBUG: endpoint http:\/\/127\.0\.0\.1:\d+\/settings \(profile default in /);
    proxy.log.length = 0;
    const given = await list('settings', ['--endpoint-url', proxy.url, '--debug'], env({ AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9' }));
    expect(given.code, given.stderr).toBe(0);
    expect(given.stderr).toContain('(--endpoint-url)');
    expect(proxy.log.length).toBeGreaterThan(0);
  });

  it('accepts -b s3://bucket/prefix', async () => {
    const r = await list('s3://settings/some/prefix', ['--url', proxy.url], env());
    expect(r.code, r.stderr).toBe(0);
    expect(proxy.log.map((q) => q.query.get('prefix'))).toContain('some/prefix/none');
  });
});

describe('proxies from the environment and CA bundles', () => {
  let fwd: ForwardProxy;
  let tls: S3rver;
  let cert = '';
  beforeAll(async () => {
    fwd = await startForwardProxy();
    const key = join(work.dir, 'tls-key.pem');
    cert = join(work.dir, 'tls-cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', key, '-out', cert], { stdio: 'ignore' });
    tls = await startS3rver({ key, cert });
    await checkClient(server.url).send(new CreateBucketCommand({ Bucket: 'viaproxy' }));
  });
  afterAll(async () => {
    await fwd?.stop();
    await tls?.stop();
  });
  beforeEach(() => { fwd.log.length = 0; });

  it('HTTP_PROXY carries plain-http requests (absolute URIs), and NO_PROXY hosts bypass it', async () => {
    const r = await list('viaproxy', ['--url', server.url], env({ HTTP_PROXY: fwd.url }));
    expect(r.code, r.stderr).toBe(0);
    expect(fwd.log.length).toBeGreaterThan(0);
    expect(fwd.log.every((l) => l.startsWith(`GET ${server.url}/viaproxy`))).toBe(true);
    fwd.log.length = 0;
    for (const noProxy of ['127.0.0.1', `localhost,127.0.0.1:${server.port}`, '*']) {
      const direct = await list('viaproxy', ['--url', server.url], env({ HTTP_PROXY: fwd.url, NO_PROXY: noProxy }));
      expect(direct.code, direct.stderr).toBe(0);
      expect(fwd.log, noProxy).toEqual([]);
    }
  });

  it('HTTPS_PROXY tunnels https with CONNECT; the server is trusted through AWS_CA_BUNDLE or the profile\'s ca_bundle', async () => {
    await checkClientTls(tls.url, cert);
    const untrusted = await list('secure', ['--url', tls.url], env({ HTTPS_PROXY: fwd.url }));
    expect(untrusted.code).toBe(254);
    expect(untrusted.stderr).toMatch(/TLS certificate is not trusted \(.+\); check AWS_CA_BUNDLE or the profile's ca_bundle/);
    expect(fwd.log[0]).toBe(`CONNECT 127.0.0.1:${tls.port}`);
    fwd.log.length = 0;
    const trusted = await list('secure', ['--url', tls.url, '--debug'], env({ HTTPS_PROXY: fwd.url, AWS_CA_BUNDLE: cert }));
    expect(trusted.code, trusted.stderr).toBe(0);
    expect(fwd.log.length).toBeGreaterThan(0);
    expect(fwd.log.every((l) => l === `CONNECT 127.0.0.1:${tls.port}`)).toBe(true);
    expect(trusted.stderr).toContain(`proxy ${fwd.url}`);
    expect(trusted.stderr).toContain(`CA bundle ${cert} (AWS_CA_BUNDLE)`);
    writeFileSync(join(work.dir, 'ca-config'), `[default]\nregion = eu-west-2\nca_bundle = ${cert}\n`);
    fwd.log.length = 0;
    const viaProfile = await list('secure', ['--url', tls.url], env({ AWS_CONFIG_FILE: join(work.dir, 'ca-config'), NO_PROXY: '127.0.0.1', HTTPS_PROXY: fwd.url }));
    expect(viaProfile.code, viaProfile.stderr).toBe(0);
    expect(fwd.log).toEqual([]);
  });
});

describe('network failures', () => {
  it('say what failed and what to check, in one line', async () => {
    const r = await runCli('ec2-download-bundle', ['-b', 'nowhere', '--url', 'http://127.0.0.1:1', '-d', work.dir, '--batch'],
      { env: env({ AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1' }) });
    expect(r.code).toBe(254);
    const last = r.stderr.trim().split('\n').pop();
    expect(last).toMatch(/^ERROR: GetObject on s3:\/\/nowhere\/image\.manifest\.xml failed: nothing accepts connections at 127\.0\.0\.1:1 \(ECONNREFUSED\); check the endpoint \(--url\/--endpoint-url, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, --region\), the proxy \(HTTPS_PROXY, HTTP_PROXY, NO_PROXY\) and the network/);
    expect(r.stderr.split('\n').filter((l) => l && !l.startsWith('Retrying'))).toHaveLength(1);
  });
});

/** Creates the bucket "secure" on the TLS s3rver, trusting its certificate. */
async function checkClientTls(url: string, certPath: string): Promise<void> {
  const { S3Client } = await import('@aws-sdk/client-s3');
  const { Agent } = await import('node:https');
  const { readFileSync } = await import('node:fs');
  const c = new S3Client({
    endpoint: url, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    requestHandler: { httpsAgent: new Agent({ ca: readFileSync(certPath) }) },
  });
  await c.send(new CreateBucketCommand({ Bucket: 'secure' })).catch((e) => { if (e.name !== 'BucketAlreadyOwnedByYou') throw e; });
}
