import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** OpenStack Swift with s3api on 127.0.0.1: a us-east-1 proxy and a second proxy configured as eu-west-1. */
export interface Swift {
  url: string;          // us-east-1 endpoint
  euUrl: string;        // eu-west-1 endpoint (same storage)
  accessKey: string;
  secretKey: string;
  dir: string;
  logs(): string;
  stop(): Promise<void>;
}

const PORTS = { object: 16210, container: 16211, account: 16212, proxy: 16280, proxyEu: 16281 };

// Test-only paste filter: Swift's s3api rejects the canned ACL aws-exec-read (real S3 accepts it). Map it to
// 'private' where s3api translates ACL headers, after the signature's string-to-sign was taken from the request.
const ACL_FILTER = `
def filter_factory(global_conf, **local_conf):
    from swift.common.middleware.s3api import s3request
    original = s3request.handle_acl_header
    def handle_acl_header(req):
        if req.environ.get('HTTP_X_AMZ_ACL') == 'aws-exec-read':
            req.environ['HTTP_X_AMZ_ACL'] = 'private'
        return original(req)
    s3request.handle_acl_header = handle_acl_header
    return lambda app: app
`;

function serverConf(s: string, kind: 'object' | 'container' | 'account'): string {
  return `[DEFAULT]
swift_dir = ${s}/etc
devices = ${s}/srv
mount_check = false
bind_ip = 127.0.0.1
bind_port = ${PORTS[kind]}
workers = 0
log_level = WARNING

[pipeline:main]
pipeline = ${kind}-server

[app:${kind}-server]
use = egg:swift#${kind}
`;
}

function proxyConf(s: string, port: number, location: string): string {
  return `[DEFAULT]
swift_dir = ${s}/etc
bind_ip = 127.0.0.1
bind_port = ${port}
workers = 0
log_level = WARNING

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats amitools_acl s3api tempauth copy slo dlo proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true

[filter:amitools_acl]
paste.filter_factory = amitools_swift_acl:filter_factory

[filter:s3api]
use = egg:swift#s3api
location = ${location}

[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = testing .admin

[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:cache]
use = egg:swift#memcache
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:copy]
use = egg:swift#copy
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
`;
}

async function waitHealthy(url: string, children: ChildProcess[], logs: () => string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (children.some((c) => c.exitCode !== null)) throw new Error(`a Swift server exited:\n${logs()}`);
    try {
      const r = await fetch(`${url}/healthcheck`);
      if (r.ok) return;
    } catch { /* not up yet */ }
    await sleep(200);
  }
  throw new Error(`Swift at ${url} did not answer /healthcheck within 60 s:\n${logs()}`);
}

/** Writes rings and configs under a temp dir and starts object/container/account servers and the two proxies. */
export async function startSwift(): Promise<Swift> {
  const s = mkdtempSync(join(tmpdir(), 'swift-'));
  mkdirSync(join(s, 'etc'));
  mkdirSync(join(s, 'srv', 'd1'), { recursive: true });
  writeFileSync(join(s, 'amitools_swift_acl.py'), ACL_FILTER);
  for (const kind of ['object', 'container', 'account'] as const) {
    const builder = join(s, 'etc', `${kind}.builder`);
    execFileSync('swift-ring-builder', [builder, 'create', '10', '1', '1'], { stdio: 'ignore' });
    execFileSync('swift-ring-builder', [builder, 'add', `r1z1-127.0.0.1:${PORTS[kind]}/d1`, '1'], { stdio: 'ignore' });
    execFileSync('swift-ring-builder', [builder, 'rebalance'], { stdio: 'ignore' });
    writeFileSync(join(s, 'etc', `${kind}-server.conf`), serverConf(s, kind));
  }
  writeFileSync(join(s, 'etc', 'proxy-server.conf'), proxyConf(s, PORTS.proxy, 'us-east-1'));
  writeFileSync(join(s, 'etc', 'proxy-server-eu.conf'), proxyConf(s, PORTS.proxyEu, 'eu-west-1'));
  const logPath = join(s, 'swift.log');
  const log = openSync(logPath, 'a');
  const env = { ...process.env, PYTHONPATH: s + (process.env.PYTHONPATH ? `:${process.env.PYTHONPATH}` : '') };
  const start = (bin: string, conf: string) =>
    spawn(bin, [join(s, 'etc', conf)], { stdio: ['ignore', log, log], env });
  const children = [
    start('swift-object-server', 'object-server.conf'),
    start('swift-container-server', 'container-server.conf'),
    start('swift-account-server', 'account-server.conf'),
    start('swift-proxy-server', 'proxy-server.conf'),
    start('swift-proxy-server', 'proxy-server-eu.conf'),
  ];
  const logs = () => { try { return readFileSync(logPath, 'utf8').slice(-4000); } catch { return ''; } };
  const stop = async () => {
    await Promise.all(children.map((c) => new Promise<void>((resolve) => {
      if (c.exitCode !== null || c.signalCode !== null) return resolve();
      const t = setTimeout(() => c.kill('SIGKILL'), 5000);
      c.once('exit', () => { clearTimeout(t); resolve(); });
      c.kill('SIGTERM');
    })));
    rmSync(s, { recursive: true, force: true });
  };
  try {
    const url = `http://127.0.0.1:${PORTS.proxy}`;
    const euUrl = `http://127.0.0.1:${PORTS.proxyEu}`;
    await waitHealthy(url, children, logs);
    await waitHealthy(euUrl, children, logs);
    return { url, euUrl, accessKey: 'test:tester', secretKey: 'testing', dir: s, logs, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
