import { createServer, request as httpRequest, type Server } from 'node:http';
import { connect as netConnect, type AddressInfo, type Socket } from 'node:net';

/** What went through the proxy: "CONNECT host:port" for tunnels, "GET http://host:port/path" for forwarded requests. */
export interface ForwardProxy { url: string; log: string[]; stop(): Promise<void> }

/**
 * A small HTTP proxy on 127.0.0.1, as HTTPS_PROXY/HTTP_PROXY name one: CONNECT tunnels (for https) and absolute-URI
 * requests forwarded as they are (for http). It only reaches 127.0.0.1: anything else is refused with 403.
 */
export async function startForwardProxy(): Promise<ForwardProxy> {
  const log: string[] = [];
  const sockets = new Set<Socket>();
  const local = (host: string) => host === '127.0.0.1' || host === 'localhost';
  const server: Server = createServer((req, res) => {
    let target: URL;
    try { target = new URL(req.url ?? ''); } catch { res.writeHead(400).end(); return; }
    log.push(`${req.method} ${target.href}`);
    if (!local(target.hostname)) { res.writeHead(403).end(); return; }
    const fwd = httpRequest({ host: target.hostname, port: target.port, method: req.method, path: target.pathname + target.search, headers: req.headers }, (ures) => {
      res.writeHead(ures.statusCode ?? 502, ures.headers);
      ures.pipe(res);
    });
    fwd.on('error', () => res.destroy());
    req.pipe(fwd);
  });
  server.on('connect', (req, client: Socket, head: Buffer) => {
    log.push(`CONNECT ${req.url}`);
    const [host, port] = (req.url ?? '').split(':');
    if (!local(host!)) { client.end('HTTP/1.1 403 Forbidden\r\n\r\n'); return; }
    const upstream = netConnect(Number(port), host!, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    for (const s of [upstream, client]) { sockets.add(s); s.on('close', () => sockets.delete(s)); s.on('error', () => { upstream.destroy(); client.destroy(); }); }
  });
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    log,
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}
