import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { ToolError, UsageError } from '../errors.js';
import { TOOL_NAME, TOOL_VERSION } from '../version.js';
import { isPlainFileName } from './part-name.js';

/** The only manifest format we read and write. */
export const MANIFEST_VERSION = '2007-10-10';

export interface BlockDeviceMapping { virtual: string; device: string }
export interface ManifestPart { filename: string; digest: string }

export interface Manifest {
  version: string;
  bundler: { name: string; version: string; release: string };
  architecture: string;
  blockDeviceMappings: BlockDeviceMapping[];
  kernelId?: string;
  ramdiskId?: string;
  /** One <product_code> each; the CLI passes the raw --productcodes string as ONE entry, like the original. */
  productCodes: string[];
  name: string;
  user: string;
  type: string;
  kernelName?: string;
  ancestry: string[];
  digest: string;
  size: number;
  bundledSize: number;
  ec2EncryptedKey: string;
  userEncryptedKey: string;
  ec2EncryptedIv: string;
  userEncryptedIv: string;
  parts: ManifestPart[];
}

/** A manifest that cannot be read: names the file and the element at fault. */
export class ManifestError extends ToolError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, { ...options, code: 'MANIFEST_INVALID' });
    this.name = 'ManifestError';
  }
}

/**
 * Our <bundler> element. The original writes its x.y.z release as version 'x.y' and release 'z'
 * (1.5.3 → 1.5 / 3); we split our package version the same way (0.1.0 → 0.1 / 0).
 */
export function toolBundler(version: string = TOOL_VERSION): Manifest['bundler'] {
  const m = /^(\d+\.\d+)\.(.+)$/.exec(version);
  return m ? { name: TOOL_NAME, version: m[1]!, release: m[2]! } : { name: TOOL_NAME, version, release: '0' };
}

// ---------------------------------------------------------------------------------------------------------------
// Writing

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };

/** XML text/attribute escaping as the original writes it; non-ASCII stays raw UTF-8. */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

const el = (name: string, text: string) => `<${name}>${escapeXml(text)}</${name}>`;
const optional = (name: string, text: string | undefined) => (text ? el(name, text) : '');

/** Plain byte order of the UTF-8 encodings (not UTF-16 code-unit order). */
function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function checkForWriting(m: Manifest): void {
  const bad = (what: string) => { throw new ManifestError(`cannot write manifest: ${what}`); };
  if (m.version !== MANIFEST_VERSION) bad(`version '${m.version}' is not ${MANIFEST_VERSION}`);
  for (const n of ['size', 'bundledSize'] as const) {
    if (!Number.isSafeInteger(m[n]) || m[n] < 0) bad(`${n} ${m[n]} is not a whole number of bytes`);
  }
  const hex = (what: string, v: string, len?: number) => {
    if (!/^[0-9a-fA-F]+$/.test(v) || (len !== undefined && v.length !== len)) bad(`${what} is not ${len ? `${len}-digit ` : ''}hex`);
  };
  hex('digest', m.digest, 40);
  hex('ec2EncryptedKey', m.ec2EncryptedKey);
  hex('userEncryptedKey', m.userEncryptedKey);
  hex('ec2EncryptedIv', m.ec2EncryptedIv);
  hex('userEncryptedIv', m.userEncryptedIv);
  if (m.parts.length === 0) bad('no parts');
  m.parts.forEach((p, i) => hex(`part ${i} digest`, p.digest, 40));
}

/** The signed text: '<machine_configuration>…</image>', exactly as it appears in the file. */
export function buildSignedText(m: Manifest): string {
  checkForWriting(m);
  const mappings = [...m.blockDeviceMappings].sort((a, b) => byteOrder(a.virtual, b.virtual));
  const productCodes = m.productCodes.filter((c) => c !== '');
  const ancestry = m.ancestry.filter((a) => a !== '');
  const machine =
    '<machine_configuration>' +
    el('architecture', m.architecture) +
    (mappings.length
      ? `<block_device_mapping>${mappings.map((b) => `<mapping>${el('virtual', b.virtual)}${el('device', b.device)}</mapping>`).join('')}</block_device_mapping>`
      : '') +
    optional('kernel_id', m.kernelId) +
    optional('ramdisk_id', m.ramdiskId) +
    (productCodes.length ? `<product_codes>${productCodes.map((c) => el('product_code', c)).join('')}</product_codes>` : '') +
    '</machine_configuration>';
  const image =
    '<image>' +
    el('name', m.name) +
    el('user', m.user) +
    el('type', m.type) +
    optional('kernel_name', m.kernelName) +
    (ancestry.length ? `<ancestry>${ancestry.map((a) => el('ancestor_ami_id', a)).join('')}</ancestry>` : '') +
    `<digest algorithm='SHA1'>${m.digest}</digest>` +
    el('size', String(m.size)) +
    el('bundled_size', String(m.bundledSize)) +
    `<ec2_encrypted_key algorithm='AES-128-CBC'>${m.ec2EncryptedKey}</ec2_encrypted_key>` +
    `<user_encrypted_key algorithm='AES-128-CBC'>${m.userEncryptedKey}</user_encrypted_key>` +
    el('ec2_encrypted_iv', m.ec2EncryptedIv) +
    el('user_encrypted_iv', m.userEncryptedIv) +
    `<parts count='${m.parts.length}'>` +
    m.parts.map((p, i) => `<part index='${i}'>${el('filename', p.filename)}<digest algorithm='SHA1'>${p.digest}</digest></part>`).join('') +
    '</parts></image>';
  return machine + image;
}

/** The whole manifest file: one line, no trailing newline. */
export function buildManifestXml(m: Manifest, signatureHex: string): string {
  if (!/^[0-9a-fA-F]+$/.test(signatureHex)) throw new ManifestError('cannot write manifest: the signature is not hex');
  return (
    "<?xml version='1.0'?><manifest>" +
    el('version', m.version) +
    `<bundler>${el('name', m.bundler.name)}${el('version', m.bundler.version)}${el('release', m.bundler.release)}</bundler>` +
    buildSignedText(m) +
    `<signature>${signatureHex}</signature></manifest>`
  );
}

/** The signed region of a manifest file as it is on disk (never a re-serialization). */
export function signedSubstring(xml: string, source?: string): string {
  const start = xml.indexOf('<machine_configuration>');
  const end = start < 0 ? -1 : xml.indexOf('</image>', start);
  if (start < 0 || end < 0) {
    throw new ManifestError(`${where(source)}: no '<machine_configuration>…</image>' region to verify; is this a ${MANIFEST_VERSION} manifest?`);
  }
  return xml.slice(start, end + '</image>'.length);
}

// ---------------------------------------------------------------------------------------------------------------
// Reading

/**
 * Older formats the original still read (both from 2007; version 3 signs <image> only and has no architecture).
 * Nothing made with them is usable today, so we name them and stop instead of guessing at their layout.
 */
const OLD_VERSIONS: Record<string, string> = {
  '3': "manifest version 3 (2007, signed over <image> only, no architecture)",
  '2007-08-29': 'manifest version 2007-08-29',
};

const where = (source?: string) => (source ? `Invalid manifest '${source}'` : 'Invalid manifest');

type Node = Record<string, unknown>;

const ARRAY_ELEMENTS = new Set(['part', 'mapping', 'product_code', 'ancestor_ami_id']);

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  // Keep every value a string: hex like '1e10' or ids must never become numbers.
  parseTagValue: false,
  parseAttributeValue: false,
  // Values are kept exactly; whitespace between elements is dropped below.
  trimValues: false,
  // Entities are decoded by decodeEntities (the parser leaves numeric references alone).
  processEntities: false,
  ignoreDeclaration: true,
  ignorePiTags: true,
  isArray: (name) => ARRAY_ELEMENTS.has(name),
});

const ENTITY = /&(?:(amp|lt|gt|quot|apos)|#(\d+)|#x([0-9a-fA-F]+));|&/g;
const NAMED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

class Reader {
  constructor(private readonly source?: string) {}

  fail(what: string): never {
    throw new ManifestError(`${where(this.source)}: ${what}.`);
  }

  decode(raw: string, path: string): string {
    return raw.replace(ENTITY, (all, name: string | undefined, dec: string | undefined, hex: string | undefined) => {
      if (name) return NAMED[name]!;
      const code = dec !== undefined ? Number(dec) : hex !== undefined ? parseInt(hex, 16) : NaN;
      if (!Number.isInteger(code) || code < 1 || code > 0x10ffff) this.fail(`bad entity or character reference '${all}' in <${path}> (escape a literal '&' as '&amp;')`);
      return String.fromCodePoint(code);
    });
  }

  /** The child element `name` of `node` (an object), or undefined. */
  child(node: Node, name: string, path: string): unknown {
    const v = node[name];
    if (Array.isArray(v) && !ARRAY_ELEMENTS.has(name)) this.fail(`more than one <${path}/${name}> element`);
    return v;
  }

  container(node: Node, name: string, path: string, required: true): Node;
  container(node: Node, name: string, path: string, required: false): Node | undefined;
  container(node: Node, name: string, path: string, required: boolean): Node | undefined {
    const v = this.child(node, name, path);
    const full = path ? `${path}/${name}` : name;
    if (v === undefined) return required ? this.fail(`missing <${full}> element`) : undefined;
    if (v === '') return {};
    if (typeof v !== 'object' || v === null) this.fail(`<${full}> should hold elements, not text`);
    return v as Node;
  }

  /** Text of a leaf element; undefined when absent. */
  optText(node: Node, name: string, path: string): string | undefined {
    const v = this.child(node, name, path);
    return v === undefined ? undefined : this.textOf(v, `${path}/${name}`);
  }

  text(node: Node, name: string, path: string): string {
    const t = this.optText(node, name, path);
    if (t === undefined) this.fail(`missing <${path}/${name}> element`);
    return t;
  }

  textOf(v: unknown, path: string): string {
    if (typeof v === 'string') return this.decode(v, path);
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
      const keys = Object.keys(v).filter((k) => !k.startsWith('@_'));
      if (keys.every((k) => k === '#text')) return this.decode(String((v as Node)['#text'] ?? ''), path);
    }
    return this.fail(`<${path}> should hold text, not elements`);
  }

  attr(v: unknown, attr: string, path: string): string | undefined {
    if (typeof v !== 'object' || v === null) return undefined;
    const a = (v as Node)[`@_${attr}`];
    return a === undefined ? undefined : this.decode(String(a), `${path} ${attr}`);
  }

  hex(node: Node, name: string, path: string, length?: number): string {
    const t = this.text(node, name, path);
    if (!/^[0-9a-fA-F]+$/.test(t) || (length !== undefined && t.length !== length)) {
      this.fail(`<${path}/${name}> is not a ${length ? `${length}-digit ` : ''}hex value: '${short(t)}'`);
    }
    if (length === undefined && t.length % 2 !== 0) this.fail(`<${path}/${name}> has an odd number of hex digits`);
    return t;
  }

  decimal(node: Node, name: string, path: string): number {
    const t = this.text(node, name, path);
    const n = Number(t);
    if (!/^\d+$/.test(t) || !Number.isSafeInteger(n)) this.fail(`<${path}/${name}> is not a whole number: '${short(t)}'`);
    return n;
  }

  list(node: Node | undefined, name: string, path: string): unknown[] {
    if (!node) return [];
    const v = node[name];
    return v === undefined ? [] : (v as unknown[]);
  }

  /** An algorithm attribute, when present, must be the one the format uses. */
  algorithm(node: Node, name: string, path: string, expected: string): void {
    const a = this.attr(node[name], 'algorithm', `${path}/${name}`);
    if (a !== undefined && a !== expected) this.fail(`<${path}/${name}> uses algorithm '${a}', only ${expected} is supported`);
  }
}

const short = (s: string) => (s.length > 40 ? `${s.slice(0, 40)}…` : s);

/** Reads a 2007-10-10 manifest; throws ManifestError naming `source` and the missing/malformed element. */
export function parseManifest(xml: string, source?: string): Manifest & { signature: string } {
  const r: Reader = new Reader(source);
  if (typeof xml !== 'string' || xml.trim() === '') r.fail('the file is empty');
  if (/<!DOCTYPE/i.test(xml)) r.fail('DOCTYPE declarations are not allowed in a manifest');
  if (xml.includes('<![CDATA[')) r.fail('CDATA sections are not allowed in a manifest');
  const valid = XMLValidator.validate(xml);
  if (valid !== true) r.fail(`not well-formed XML (line ${valid.err.line}: ${valid.err.msg.replace(/\.$/, '')})`);
  let doc: Node;
  try {
    doc = parser.parse(xml) as Node;
  } catch (err) {
    return r.fail(`not well-formed XML (${err instanceof Error ? err.message : String(err)})`);
  }
  const roots = Object.keys(doc).filter((k) => k !== '#text');
  if (roots.length !== 1 || roots[0] !== 'manifest') r.fail('not an AMI manifest (the root element is not <manifest>)');
  const root = r.container(doc, 'manifest', '', true);

  const version = r.text(root, 'version', 'manifest');
  if (version !== MANIFEST_VERSION) {
    const old = OLD_VERSIONS[version];
    if (old) r.fail(`${old} is not supported; only ${MANIFEST_VERSION} manifests can be read (re-bundle the image with this tool)`);
    r.fail(`unsupported manifest version '${short(version)}' (expected ${MANIFEST_VERSION})`);
  }

  const bundlerNode = r.container(root, 'bundler', 'manifest', true);
  const bundler = {
    name: r.text(bundlerNode, 'name', 'manifest/bundler'),
    version: r.text(bundlerNode, 'version', 'manifest/bundler'),
    release: r.text(bundlerNode, 'release', 'manifest/bundler'),
  };

  const mcPath = 'manifest/machine_configuration';
  const mc = r.container(root, 'machine_configuration', 'manifest', true);
  const architecture = r.text(mc, 'architecture', mcPath);
  if (architecture === '') r.fail(`<${mcPath}/architecture> is empty`);
  const bdm = r.container(mc, 'block_device_mapping', mcPath, false);
  const blockDeviceMappings = r.list(bdm, 'mapping', `${mcPath}/block_device_mapping`).map((m, i) => {
    const p = `${mcPath}/block_device_mapping/mapping[${i}]`;
    if (typeof m !== 'object' || m === null) r.fail(`<${p}> should hold <virtual> and <device>`);
    return { virtual: r.text(m as Node, 'virtual', p), device: r.text(m as Node, 'device', p) };
  });
  const kernelId = r.optText(mc, 'kernel_id', mcPath) || undefined;
  const ramdiskId = r.optText(mc, 'ramdisk_id', mcPath) || undefined;
  const pc = r.container(mc, 'product_codes', mcPath, false);
  const productCodes = r.list(pc, 'product_code', `${mcPath}/product_codes`).map((c) => r.textOf(c, `${mcPath}/product_codes/product_code`));

  const ip = 'manifest/image';
  const image = r.container(root, 'image', 'manifest', true);
  const name = r.text(image, 'name', ip);
  if (name === '') r.fail(`<${ip}/name> is empty`);
  const user = r.text(image, 'user', ip);
  const type = r.text(image, 'type', ip);
  const kernelName = r.optText(image, 'kernel_name', ip) || undefined;
  const anc = r.container(image, 'ancestry', ip, false);
  const ancestry = r.list(anc, 'ancestor_ami_id', `${ip}/ancestry`).map((a) => r.textOf(a, `${ip}/ancestry/ancestor_ami_id`));
  r.algorithm(image, 'digest', ip, 'SHA1');
  const digest = r.hex(image, 'digest', ip, 40);
  const size = r.decimal(image, 'size', ip);
  const bundledSize = r.decimal(image, 'bundled_size', ip);
  r.algorithm(image, 'ec2_encrypted_key', ip, 'AES-128-CBC');
  r.algorithm(image, 'user_encrypted_key', ip, 'AES-128-CBC');
  const ec2EncryptedKey = r.hex(image, 'ec2_encrypted_key', ip);
  const userEncryptedKey = r.hex(image, 'user_encrypted_key', ip);
  const ec2EncryptedIv = r.hex(image, 'ec2_encrypted_iv', ip);
  const userEncryptedIv = r.hex(image, 'user_encrypted_iv', ip);

  const pp = `${ip}/parts`;
  const partsNode = r.container(image, 'parts', ip, true);
  const countText = r.attr(partsNode, 'count', pp);
  if (countText === undefined) r.fail(`<${pp}> has no count attribute`);
  if (!/^\d+$/.test(countText)) r.fail(`<${pp}> count '${short(countText)}' is not a whole number`);
  const partNodes = r.list(partsNode, 'part', pp);
  if (partNodes.length === 0) r.fail(`<${pp}> lists no <part>`);
  if (Number(countText) !== partNodes.length) r.fail(`<${pp}> count is ${countText} but it lists ${partNodes.length} <part> elements`);
  const parts = partNodes.map((node, i) => {
    const p = `${pp}/part[${i}]`;
    if (typeof node !== 'object' || node === null) r.fail(`<${p}> should hold <filename> and <digest>`);
    const index = r.attr(node, 'index', p);
    if (index === undefined) r.fail(`<${p}> has no index attribute`);
    if (index !== String(i)) r.fail(`parts out of order: <part index='${short(index)}'> found where index ${i} was expected`);
    const filename = r.text(node as Node, 'filename', p);
    if (filename === '') r.fail(`<${p}/filename> is empty`);
    if (!isPlainFileName(filename)) r.fail(`<${p}/filename> '${short(filename)}' is not a plain file name (it contains '/', '\\' or '..'); refusing a manifest that could reach outside its directory`);
    r.algorithm(node as Node, 'digest', p, 'SHA1');
    return { filename, digest: r.hex(node as Node, 'digest', p, 40) };
  });

  const signature = r.hex(root, 'signature', 'manifest');

  return {
    version, bundler, architecture, blockDeviceMappings, kernelId, ramdiskId, productCodes,
    name, user, type, kernelName, ancestry, digest, size, bundledSize,
    ec2EncryptedKey, userEncryptedKey, ec2EncryptedIv, userEncryptedIv, parts, signature,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// -B / --block-device-mapping

/** `-B 'ami=sda1,root=/dev/sda1'`: split on ',' then '=', trimmed; a repeated key keeps the last value. */
export function parseBlockDeviceMappingFlag(value: string, flag = '--block-device-mapping'): BlockDeviceMapping[] {
  const invalid = (reason: string) => new UsageError(`${flag} has invalid value '${value}': ${reason}`);
  if (value.trim() === '') throw invalid("expected comma-separated virtual=device pairs, e.g. 'ami=sda1,root=/dev/sda1'");
  const byVirtual = new Map<string, string>();
  for (const entry of value.split(',')) {
    const eq = entry.indexOf('=');
    const virtual = (eq < 0 ? entry : entry.slice(0, eq)).trim();
    const device = eq < 0 ? '' : entry.slice(eq + 1).trim();
    if (eq < 0 || virtual === '' || device === '' || device.includes('=') || /\s/.test(virtual) || /\s/.test(device)) {
      throw invalid(`'${entry.trim()}' is not a virtual=device pair (e.g. 'ami=sda1,root=/dev/sda1')`);
    }
    byVirtual.set(virtual, device);
  }
  return [...byVirtual].map(([virtual, device]) => ({ virtual, device }));
}

/** The original's warnings when -B lacks an 'ami' or a 'root' entry (printed on stdout by the CLI). */
export function missingMappingWarnings(mappings: BlockDeviceMapping[]): string[] {
  if (mappings.length === 0) return [];
  return ['root', 'ami']
    .filter((v) => !mappings.some((m) => m.virtual === v))
    .map((v) => `Block-device-mapping has no '${v}' entry. A launch-time default will be used.`);
}
