import { Agent as HttpAgent, type ClientRequest } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { Agent as AgentBase, type AgentConnectOpts } from 'agent-base';
import { HttpProxyAgent } from 'http-proxy-agent';
import { HttpsProxyAgent } from 'https-proxy-agent';

const envVar = (env: NodeJS.ProcessEnv, name: string) => env[name.toLowerCase()] || env[name.toUpperCase()] || '';

/** NO_PROXY as curl and the AWS CLI (Python's urllib) read it: `*`, or hosts that also cover their subdomains, each with an optional port. */
function bypassed(host: string, port: number, noProxy: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  return noProxy.split(/[\s,]+/).some((entry) => {
    if (entry === '*') return true;
    const m = /^(.*?)(?::(\d+))?$/.exec(entry.toLowerCase())!;
    const name = m[1].replace(/^\*?\.?/, '').replace(/^\[|\]$/g, '');
    if (!name || (m[2] && Number(m[2]) !== port)) return false;
    return h === name || h.endsWith(`.${name}`);
  });
}

/**
 * The proxy for a URL as the AWS CLI and curl choose it: HTTPS_PROXY for https, HTTP_PROXY for http (lower-case names
 * first, then ALL_PROXY), none for a host NO_PROXY names. Undefined: connect directly. Hand-written rather than
 * proxy-from-env, whose NO_PROXY entry `example.com` does not cover `s3.example.com` as it does for the AWS CLI.
 */
export function proxyFor(url: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const u = new URL(url);
  const scheme = u.protocol.replace(/:$/, '');
  const proxy = envVar(env, `${scheme}_proxy`) || envVar(env, 'all_proxy');
  if (!proxy) return undefined;
  const port = Number(u.port) || (scheme === 'https' ? 443 : 80);
  if (bypassed(u.hostname, port, envVar(env, 'no_proxy'))) return undefined;
  return proxy.includes('://') ? proxy : `http://${proxy}`;
}

/** A proxy URL fit to print: without its user name and password. */
export function displayProxy(proxy: string): string {
  try {
    const u = new URL(proxy);
    u.username = '';
    u.password = '';
    return u.href.replace(/\/$/, '');
  } catch {
    return '(unparsable proxy URL)';
  }
}

export interface AgentOptions {
  maxSockets: number;
  /** Trusted CA certificates instead of Node's (AWS_CA_BUNDLE / ca_bundle). */
  ca?: Buffer;
  env?: NodeJS.ProcessEnv;
}

/**
 * An agent that decides per request, from the environment, whether to go through a proxy (CONNECT for https, an
 * absolute-URI request for http) or straight to the host; keep-alive either way. The SDK's NodeHttpHandler does not
 * read HTTPS_PROXY/NO_PROXY itself.
 */
class EnvProxyAgent extends AgentBase {
  private readonly direct: HttpAgent;
  private readonly viaProxy = new Map<string, HttpAgent>();

  constructor(private readonly secure: boolean, private readonly o: AgentOptions) {
    super({ keepAlive: true, maxSockets: o.maxSockets, ...(o.ca ? { ca: o.ca } : {}) } as object);
    const opts = { keepAlive: true, maxSockets: o.maxSockets, ...(o.ca ? { ca: o.ca } : {}) };
    this.direct = secure ? new HttpsAgent(opts) : new HttpAgent(opts);
  }

  connect(req: ClientRequest, opts: AgentConnectOpts): HttpAgent {
    const host = req.getHeader('host') ?? `${opts.host}:${opts.port}`;
    const proxy = proxyFor(`${this.secure ? 'https' : 'http'}://${host}${req.path}`, this.o.env);
    if (!proxy) return this.direct;
    let agent = this.viaProxy.get(proxy);
    if (!agent) {
      const opt = { keepAlive: true, maxSockets: this.o.maxSockets, ...(this.o.ca ? { ca: this.o.ca } : {}) };
      agent = this.secure ? new HttpsProxyAgent(proxy, opt) : new HttpProxyAgent(proxy, opt);
      this.viaProxy.set(proxy, agent);
    }
    return agent;
  }

  override destroy(): void {
    this.direct.destroy();
    for (const a of this.viaProxy.values()) a.destroy();
    super.destroy();
  }
}

/** The http and https agents for an SDK client's request handler: proxies from the environment, the CA bundle. */
export function createAgents(o: AgentOptions): { httpAgent: HttpAgent; httpsAgent: HttpsAgent } {
  return { httpAgent: new EnvProxyAgent(false, o), httpsAgent: new EnvProxyAgent(true, o) as unknown as HttpsAgent };
}
