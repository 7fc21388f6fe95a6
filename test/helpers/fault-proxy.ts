import { createHash } from 'node:crypto';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Readable } from 'node:stream';

/** One request as it arrived at the proxy, with what its body really was. */
export interface LoggedRequest {
  seq: number;
  method: string;
  url: string;                // path + query, as sent
  path: string;               // decoded path without the query
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  bodyLength: number;
  bodyMd5: string;            // base64, comparable with Content-MD5
  status?: number;            // what the client got (undefined for a reset or a stall)
  sentBytes: number;          // body bytes the proxy managed to send back
  fault?: Fault;
}

export type Fault = 'slowdown' | 'internal' | 'reset' | 'stall';

/** Decides, per request, whether to inject a fault; undefined passes the request through. */
export type FaultRule = (req: { method: string; path: string; query: URLSearchParams; headers: IncomingHttpHeaders }, seq: number) => Fault | undefined;

export interface FaultProxy {
  url: string;
  log: LoggedRequest[];
  rule: FaultRule | undefined;
  /**
   * A canned answer (status, body) instead of forwarding, e.g. a LocationConstraint. A body given as a function is
   * streamed (chunked unless headers say otherwise) and stopped when the client goes away: a hostile endpoint.
   */
  canned: ((req: { method: string; path: string; query: URLSearchParams; headers: IncomingHttpHeaders }) => CannedAnswer | undefined) | undefined;
  stop(): Promise<void>;
}

export interface CannedAnswer { status: number; body: string | Buffer | (() => Readable); headers?: Record<string, string> }

export const errorBody = (code: string, message: string) =>
  `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><RequestId>proxy</RequestId></Error>`;

/**
 * An HTTP proxy in front of an S3 server: logs every request with its headers and the MD5 of its body, and can answer
 * 503 SlowDown, 500 InternalError, reset the connection, or stall without answering. Host passes through unchanged
 * so signatures stay valid.
 */
export async function startFaultProxy(upstream: string): Promise<FaultProxy> {
  const up = new URL(upstream);
  const sockets = new Set<Socket>();
  let seq = 0;
  const proxy: FaultProxy = { url: '', log: [], rule: undefined, canned: undefined, stop: async () => {} };
  const server: Server = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    const entry: LoggedRequest = {
      seq: ++seq, method: req.method ?? '', url: req.url ?? '/', path: decodeURIComponent(u.pathname), query: u.searchParams,
      headers: req.headers, bodyLength: 0, bodyMd5: '', sentBytes: 0,
    };
    proxy.log.push(entry);
    const md5 = createHash('md5');
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => { md5.update(c); entry.bodyLength += c.length; chunks.push(c); });
    req.on('end', () => {
      entry.bodyMd5 = md5.digest('base64');
      const info = { method: entry.method, path: entry.path, query: entry.query, headers: req.headers };
      const fault = proxy.rule?.(info, entry.seq);
      entry.fault = fault;
      if (fault === 'reset') { req.socket.destroy(); return; }
      if (fault === 'stall') return; // never answer; the client's timeout must fire
      if (fault === 'slowdown' || fault === 'internal') {
        const [status, code] = fault === 'slowdown' ? [503, 'SlowDown'] : [500, 'InternalError'];
        entry.status = status;
        res.writeHead(status, { 'content-type': 'application/xml' });
        res.end(errorBody(code, 'injected by the test proxy'));
        return;
      }
      const canned = proxy.canned?.(info);
      if (canned) {
        entry.status = canned.status;
        res.writeHead(canned.status, { 'content-type': 'application/xml', ...canned.headers });
        if (typeof canned.body !== 'function') {
          entry.sentBytes = Buffer.byteLength(canned.body);
          res.end(canned.body);
          return;
        }
        const body = canned.body();
        body.on('data', (c: Buffer) => { entry.sentBytes += c.length; });
        res.on('close', () => body.destroy());
        body.pipe(res);
        return;
      }
      const fwd = httpRequest({ host: up.hostname, port: up.port, method: req.method, path: req.url, headers: req.headers }, (ures) => {
        entry.status = ures.statusCode;
        res.writeHead(ures.statusCode ?? 502, ures.headers);
        ures.on('data', (c: Buffer) => { entry.sentBytes += c.length; });
        ures.pipe(res);
      });
      fwd.on('error', () => res.destroy());
      fwd.end(Buffer.concat(chunks));
    });
  });
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  proxy.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  proxy.stop = async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  };
  return proxy;
}

/** Object-level requests (PUT/GET/DELETE of a key) in the log, as [method, key] with the bucket stripped. */
export function objectRequests(log: LoggedRequest[], method: string, bucket: string): LoggedRequest[] {
  return log.filter((r) => r.method === method && r.path.startsWith(`/${bucket}/`) && r.path.length > bucket.length + 2);
}
