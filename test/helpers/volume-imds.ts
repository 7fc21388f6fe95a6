import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A stand-in instance metadata service on 127.0.0.1: paths under /latest/meta-data/ → bodies. */
export interface ImdsStandin {
  url: string;
  /** "PUT /latest/api/token", "GET /latest/meta-data/ami-id v2" (v2: with a valid token), … */
  log: string[];
  close(): Promise<void>;
}

export interface ImdsOptions {
  /** true: IMDSv2 only (401 without a token, as with HttpTokens=required); false: v1 only (token PUT → 403). */
  requireToken?: boolean;
  v1Only?: boolean;
  data: Record<string, string>;
}

const TOKEN = 'standin-token-8f1c2e';

export async function startImds(o: ImdsOptions): Promise<ImdsStandin> {
  const log: string[] = [];
  const server: Server = createServer((req, res) => {
    const url = req.url ?? '/';
    if (req.method === 'PUT' && url === '/latest/api/token') {
      log.push('PUT /latest/api/token');
      if (o.v1Only) { res.writeHead(403).end(); return; }
      if (!req.headers['x-aws-ec2-metadata-token-ttl-seconds']) { res.writeHead(400).end(); return; }
      res.writeHead(200, { 'content-type': 'text/plain' }).end(TOKEN);
      return;
    }
    const valid = req.headers['x-aws-ec2-metadata-token'] === TOKEN;
    log.push(`${req.method} ${url}${valid ? ' v2' : ''}`);
    if (req.method !== 'GET') { res.writeHead(405).end(); return; }
    if (o.requireToken && !valid) { res.writeHead(401).end(); return; }
    const prefix = '/latest/meta-data/';
    if (!url.startsWith(prefix)) { res.writeHead(404).end(); return; }
    const key = url.slice(prefix.length);
    let body = o.data[key];
    if (body === undefined && (key === '' || key.endsWith('/'))) {
      // A directory listing: the next path component of every key below it.
      const names = new Set<string>();
      for (const k of Object.keys(o.data)) {
        if (!k.startsWith(key)) continue;
        const rest = k.slice(key.length);
        const i = rest.indexOf('/');
        names.add(i < 0 ? rest : rest.slice(0, i + 1));
      }
      if (names.size) body = [...names].join('\n');
    }
    if (body === undefined) { res.writeHead(404).end(); return; }
    res.writeHead(200, { 'content-type': 'text/plain' }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    log,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

/** The metadata of an instance launched from an instance-store AMI. */
export const SAMPLE_METADATA: Record<string, string> = {
  'ami-id': 'ami-12345678',
  'ancestor-ami-ids': 'ami-0000000a\nami-0000000b',
  'kernel-id': 'aki-88aa75e1',
  'ramdisk-id': 'ari-4ca64d25',
  'product-codes': 'PC1A2B3C\nPC4D5E6F',
  'block-device-mapping/ami': 'sda1',
  'block-device-mapping/root': '/dev/sda1',
  'block-device-mapping/ephemeral0': 'sdb',
  'block-device-mapping/swap': 'sda3',
  'block-device-mapping/ebs1': 'sdf',
  'instance-id': 'i-0123456789abcdef0',
};
