import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One image as EC2's DescribeImages lists it (the fields the Query API answers with). */
export interface StandinImage {
  imageId: string; location: string; ownerId: string; type: 'kernel' | 'ramdisk' | 'machine';
  architecture?: string; ownerAlias?: string; name?: string;
}

/** A request as the stand-in saw it: the region comes from the SigV4 credential scope. */
export interface LoggedRequest { region: string; action: string; params: Record<string, string> }

export interface Ec2Standin {
  url: string;
  log: LoggedRequest[];
  /** The next this-many requests are throttled (503 RequestLimitExceeded), as EC2 does under load. */
  throttleNext: number;
  close(): Promise<void>;
}

/** An access key the stand-in refuses, as EC2 does bad credentials. */
export const REFUSED_KEY = 'AKIDREFUSEDEXAMPLE';

const NS = 'http://ec2.amazonaws.com/doc/2016-11-15/';

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function list(params: Record<string, string>, prefix: string): string[] {
  return Object.keys(params)
    .filter((k) => new RegExp(`^${prefix}\\.\\d+$`).test(k))
    .sort((a, b) => Number(a.split('.')[1]) - Number(b.split('.')[1]))
    .map((k) => params[k]);
}

function imageItem(i: StandinImage): string {
  return '<item>' +
    `<imageId>${esc(i.imageId)}</imageId><imageLocation>${esc(i.location)}</imageLocation><imageState>available</imageState>` +
    `<imageOwnerId>${esc(i.ownerId)}</imageOwnerId><creationDate>2011-07-26T19:27:41.000Z</creationDate><isPublic>true</isPublic>` +
    `<architecture>${esc(i.architecture ?? 'x86_64')}</architecture><imageType>${i.type}</imageType>` +
    (i.ownerAlias ? `<imageOwnerAlias>${esc(i.ownerAlias)}</imageOwnerAlias>` : '') +
    (i.name ? `<name>${esc(i.name)}</name>` : '') +
    '<rootDeviceType>instance-store</rootDeviceType><blockDeviceMapping/><virtualizationType>paravirtual</virtualizationType>' +
    '<tagSet/><hypervisor>xen</hypervisor></item>';
}

function errorXml(code: string, message: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${code}</Code><Message>${esc(message)}</Message></Error></Errors><RequestID>0b1e2d3c-0000-4000-8000-000000000000</RequestID></Response>`;
}

/**
 * A stand-in for EC2's Query API on 127.0.0.1 (there is no local EC2): DescribeRegions and DescribeImages, answering with
 * the XML shapes EC2 sends (including InvalidAMIID.NotFound for an unknown id) and logging every request.
 */
export async function startEc2Standin(world: { regions: string[]; images: Record<string, StandinImage[]> }): Promise<Ec2Standin> {
  const log: LoggedRequest[] = [];
  const standin = { throttleNext: 0 } as Ec2Standin;
  const reply = (res: ServerResponse, status: number, body: string) => {
    res.writeHead(status, { 'content-type': 'text/xml;charset=UTF-8', 'x-amzn-requestid': '0b1e2d3c-0000-4000-8000-000000000000' });
    res.end(body);
  };
  const handle = (req: IncomingMessage, body: string, res: ServerResponse) => {
    if (standin.throttleNext > 0) {
      standin.throttleNext--;
      return reply(res, 503, errorXml('RequestLimitExceeded', 'Request limit exceeded.'));
    }
    const params = Object.fromEntries(new URLSearchParams(body));
    const scope = /Credential=([^/]+)\/\d{8}\/([^/]+)\/ec2\/aws4_request/.exec(req.headers.authorization ?? '');
    if (!scope || scope[1] === REFUSED_KEY) return reply(res, 401, errorXml('AuthFailure', 'AWS was not able to validate the provided access credentials'));
    const region = scope[2];
    const action = params.Action ?? '';
    delete params.Action;
    delete params.Version;
    log.push({ region, action, params });
    const head = `<?xml version="1.0" encoding="UTF-8"?>\n`;
    if (action === 'DescribeRegions') {
      const items = world.regions.map((r) => `<item><regionName>${r}</regionName><regionEndpoint>ec2.${r}.amazonaws.com</regionEndpoint><optInStatus>opt-in-not-required</optInStatus></item>`);
      return reply(res, 200, `${head}<DescribeRegionsResponse xmlns="${NS}"><requestId>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</requestId><regionInfo>${items.join('')}</regionInfo></DescribeRegionsResponse>`);
    }
    // Any endpoint lists the account's regions; only those answer DescribeImages.
    if (!world.regions.includes(region)) return reply(res, 401, errorXml('AuthFailure', 'AWS was not able to validate the provided access credentials'));
    if (action === 'DescribeImages') {
      let images = world.images[region] ?? [];
      const ids = list(params, 'ImageId');
      const owners = list(params, 'Owner');
      if (ids.length) {
        const unknown = ids.filter((id) => !images.some((i) => i.imageId === id));
        if (unknown.length) return reply(res, 400, errorXml('InvalidAMIID.NotFound', `The image id '[${unknown.join(', ')}]' does not exist`));
        images = images.filter((i) => ids.includes(i.imageId));
      }
      if (owners.length) images = images.filter((i) => owners.includes(i.ownerId) || (i.ownerAlias !== undefined && owners.includes(i.ownerAlias)));
      return reply(res, 200, `${head}<DescribeImagesResponse xmlns="${NS}"><requestId>59dbff89-35bd-4eac-99ed-be587EXAMPLE</requestId><imagesSet>${images.map(imageItem).join('')}</imagesSet></DescribeImagesResponse>`);
    }
    return reply(res, 400, errorXml('InvalidAction', `The action ${action} is not valid for this web service.`));
  };
  const server: Server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d) => (body += d));
    req.on('end', () => handle(req, body, res));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(standin, {
    url: `http://127.0.0.1:${port}`,
    log,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  });
}
