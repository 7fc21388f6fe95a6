import { ToolError } from '../errors.js';
import { displayText } from './display.js';
import { StrictXmlError, lineAndColumn, readStrictXml, type XmlElement } from './manifest-xml.js';
import { PLAIN_FILE_NAME_RULE, isPlainFileName } from './part-name.js';

/** The only manifest format we read and write. */
export const MANIFEST_VERSION = '2007-10-10';

export interface BlockDeviceMapping { virtual: string; device: string }
export interface ManifestPart { filename: string; digest: string }

/** What a manifest tells EC2 about launching the image: declared once, used by bundling, metadata and migrate. */
export type LaunchFields = Pick<Manifest, 'kernelId' | 'ramdiskId' | 'productCodes' | 'blockDeviceMappings' | 'ancestry' | 'kernelName'>;

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
  // Only what every reader accepts: plain names, and text XML can carry.
  for (const [what, name] of [['the image name', m.name], ...m.parts.map((p, i) => [`part ${i}'s file name`, p.filename])] as const) {
    if (!isPlainFileName(name)) bad(`${what} '${displayText(name)}' is not a plain file name (${PLAIN_FILE_NAME_RULE})`);
  }
  const texts: [string, string | undefined][] = [
    ['architecture', m.architecture], ['user', m.user], ['type', m.type], ['kernel id', m.kernelId], ['ramdisk id', m.ramdiskId],
    ['kernel name', m.kernelName], ['bundler name', m.bundler.name], ['bundler version', m.bundler.version], ['bundler release', m.bundler.release],
    ...m.productCodes.map((c) => ['product code', c] as [string, string]), ...m.ancestry.map((a) => ['ancestor', a] as [string, string]),
    ...m.blockDeviceMappings.flatMap((b) => [['block device mapping', b.virtual], ['block device mapping', b.device]] as [string, string][]),
  ];
  for (const [what, t] of texts) {
    const c = t === undefined ? null : NOT_XML_TEXT.exec(t);
    if (c) bad(`the ${what} '${displayText(t!)}' holds a character XML cannot carry (U+${c[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')})`);
  }
}

// Characters XML 1.0 cannot carry, even escaped.
const NOT_XML_TEXT = /[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]/u;

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

// ---------------------------------------------------------------------------------------------------------------
// Reading

/** A manifest as read: its fields, its signature, and the exact text of the elements the signature covers. */
export interface SignedManifest extends Manifest {
  signature: string;
  /**
   * The input from the start of the <machine_configuration> element read up to the end of the <image> element read
   * (the two are adjacent; only whitespace may lie between them): what the signature is checked over.
   */
  signedText: string;
  /** Where the two signed elements are in the input text (string offsets, end exclusive). */
  spans: { machineConfiguration: Span; image: Span };
}

export interface Span { start: number; end: number }

/** The largest manifest read: 10 GiB of image is 1025 parts, about 120 KiB of manifest. */
export const MAX_MANIFEST_BYTES = 1 << 20;

/**
 * Older formats the original still read (both from 2007; version 3 signs <image> only and has no architecture).
 * Nothing made with them is usable today, so we name them and stop instead of guessing at their layout.
 */
const OLD_VERSIONS: Record<string, string> = {
  '3': "manifest version 3 (2007, signed over <image> only, no architecture)",
  '2007-08-29': 'manifest version 2007-08-29',
};

const where = (source?: string) => (source ? `Invalid manifest '${displayText(source)}'` : 'Invalid manifest');

/** An element of the format: in its parent, in this order; once unless repeated; text unless it has children. */
interface Shape { name: string; optional?: true; repeated?: true; attributes?: string[]; children?: Shape[] }

/** The structure the tool writes (docs/bundle-format.md §2), and the only one it reads. */
const MANIFEST_SHAPE: Shape = {
  name: 'manifest',
  children: [
    { name: 'version' },
    { name: 'bundler', children: [{ name: 'name' }, { name: 'version' }, { name: 'release' }] },
    {
      name: 'machine_configuration',
      children: [
        { name: 'architecture' },
        {
          name: 'block_device_mapping', optional: true,
          children: [{ name: 'mapping', optional: true, repeated: true, children: [{ name: 'virtual' }, { name: 'device' }] }],
        },
        { name: 'kernel_id', optional: true },
        { name: 'ramdisk_id', optional: true },
        { name: 'product_codes', optional: true, children: [{ name: 'product_code', optional: true, repeated: true }] },
      ],
    },
    {
      name: 'image',
      children: [
        { name: 'name' },
        { name: 'user' },
        { name: 'type' },
        { name: 'kernel_name', optional: true },
        { name: 'ancestry', optional: true, children: [{ name: 'ancestor_ami_id', optional: true, repeated: true }] },
        { name: 'digest', attributes: ['algorithm'] },
        { name: 'size' },
        { name: 'bundled_size' },
        { name: 'ec2_encrypted_key', attributes: ['algorithm'] },
        { name: 'user_encrypted_key', attributes: ['algorithm'] },
        { name: 'ec2_encrypted_iv' },
        { name: 'user_encrypted_iv' },
        {
          name: 'parts', attributes: ['count'],
          children: [{
            name: 'part', optional: true, repeated: true, attributes: ['index'],
            children: [{ name: 'filename' }, { name: 'digest', attributes: ['algorithm'] }],
          }],
        },
      ],
    },
    { name: 'signature' },
  ],
};

/** Values quoted in messages: shortened, and safe to print. */
const short = (s: string) => displayText(s.length > 40 ? `${s.slice(0, 40)}…` : s);

class Reader {
  constructor(private readonly source?: string) {}

  fail(what: string): never {
    throw new ManifestError(`${where(this.source)}: ${what}.`);
  }

  /** Checks `el` (at `path`) and everything under it against `shape`: known elements, once each, in order. */
  check(el: XmlElement, shape: Shape, path: string): void {
    for (const a of el.attributes.keys()) {
      if (!shape.attributes?.includes(a)) this.fail(`<${path}> has an attribute the format does not have: '${short(a)}'`);
    }
    if (!shape.children) {
      if (el.children.length > 0) this.fail(`<${path}> should hold text, not elements`);
      return;
    }
    if (/[^ \t\r\n]/.test(el.text)) this.fail(`<${path}> should hold elements, not text`);
    const specs = shape.children;
    const seen = new Set<string>();
    let last = -1;
    for (const child of el.children) {
      const i = specs.findIndex((s) => s.name === child.name);
      if (i < 0) this.fail(`unknown element <${path}/${short(child.name)}> (the format has no such element)`);
      if (seen.has(child.name) && !(specs[i]!.repeated && i === last)) this.fail(`more than one <${path}/${child.name}> element`);
      if (i < last) this.fail(`<${path}/${child.name}> is out of order: the format puts it before <${path}/${specs[last]!.name}>`);
      seen.add(child.name);
      last = i;
    }
    for (const s of specs) if (!s.optional && !seen.has(s.name)) this.fail(`missing <${path}/${s.name}> element`);
    const counts = new Map<string, number>();
    for (const child of el.children) {
      const spec = specs.find((s) => s.name === child.name)!;
      const k = counts.get(child.name) ?? 0;
      counts.set(child.name, k + 1);
      this.check(child, spec, `${path}/${child.name}${spec.repeated ? `[${k}]` : ''}`);
    }
  }

  hex(el: XmlElement, path: string, length?: number): string {
    const t = el.text;
    if (!/^[0-9a-fA-F]+$/.test(t) || (length !== undefined && t.length !== length)) {
      this.fail(`<${path}> is not a ${length ? `${length}-digit ` : ''}hex value: '${short(t)}'`);
    }
    if (length === undefined && t.length % 2 !== 0) this.fail(`<${path}> has an odd number of hex digits`);
    return t;
  }

  decimal(el: XmlElement, path: string): number {
    const t = el.text;
    const n = Number(t);
    if (!/^\d+$/.test(t) || !Number.isSafeInteger(n)) this.fail(`<${path}> is not a whole number: '${short(t)}'`);
    return n;
  }

  /** An algorithm attribute, when present, must be the one the format uses. */
  algorithm(el: XmlElement, path: string, expected: string): void {
    const a = el.attributes.get('algorithm');
    if (a !== undefined && a !== expected) this.fail(`<${path}> uses algorithm '${short(a)}', only ${expected} is supported`);
  }

  plainName(el: XmlElement, path: string): string {
    const name = el.text;
    if (name === '') this.fail(`<${path}> is empty`);
    if (!isPlainFileName(name)) this.fail(`<${path}> '${short(name)}' is not a plain file name (${PLAIN_FILE_NAME_RULE})`);
    return name;
  }
}

/** The child element `name` (the shape was checked: at most one), or undefined. */
const child = (el: XmlElement, name: string) => el.children.find((c) => c.name === name);
const must = (el: XmlElement, name: string) => child(el, name)!;
const each = (el: XmlElement | undefined, name: string) => (el ? el.children.filter((c) => c.name === name) : []);

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Reads a 2007-10-10 manifest: only the structure the tool writes (see MANIFEST_SHAPE and readStrictXml), so that
 * the signed text returned is exactly the text of the elements read. Give the file's bytes when there is a
 * signature to check: they must be UTF-8, so that the signed text is exactly the bytes on disk. Throws
 * ManifestError naming `source` and the element at fault.
 */
export function parseManifest(input: string | Uint8Array, source?: string): SignedManifest {
  const r: Reader = new Reader(source);
  const inputSize = typeof input === 'string' ? input.length : input.byteLength;
  if (inputSize > MAX_MANIFEST_BYTES) r.fail(`it is over ${MAX_MANIFEST_BYTES >> 20} MiB, which no manifest is`);
  let xml: string;
  if (typeof input === 'string') {
    xml = input;
  } else {
    try {
      xml = UTF8.decode(input);
    } catch {
      return r.fail('not well-formed XML: it is not UTF-8 text');
    }
  }
  if (xml.trim() === '') r.fail('the file is empty');
  let root: XmlElement;
  try {
    root = readStrictXml(xml);
  } catch (err) {
    if (err instanceof StrictXmlError) r.fail(`${err.message} (${lineAndColumn(xml, err.offset)})`);
    throw err;
  }
  if (root.name !== 'manifest') r.fail('not an AMI manifest (the root element is not <manifest>)');

  // The version decides how the rest is read, so it is checked before the rest's structure.
  const versions = each(root, 'version');
  if (versions.length === 0) r.fail('missing <manifest/version> element');
  const version = versions[0]!.text;
  if (version !== MANIFEST_VERSION) {
    const old = OLD_VERSIONS[version];
    if (old) r.fail(`${old} is not supported; only ${MANIFEST_VERSION} manifests can be read (re-bundle the image with this tool)`);
    r.fail(`unsupported manifest version '${short(version)}' (expected ${MANIFEST_VERSION})`);
  }
  r.check(root, MANIFEST_SHAPE, 'manifest');

  const bundlerEl = must(root, 'bundler');
  const bundler = { name: must(bundlerEl, 'name').text, version: must(bundlerEl, 'version').text, release: must(bundlerEl, 'release').text };

  const mcPath = 'manifest/machine_configuration';
  const mc = must(root, 'machine_configuration');
  const architecture = must(mc, 'architecture').text;
  if (architecture === '') r.fail(`<${mcPath}/architecture> is empty`);
  const blockDeviceMappings = each(child(mc, 'block_device_mapping'), 'mapping')
    .map((m) => ({ virtual: must(m, 'virtual').text, device: must(m, 'device').text }));
  const kernelId = child(mc, 'kernel_id')?.text || undefined;
  const ramdiskId = child(mc, 'ramdisk_id')?.text || undefined;
  const productCodes = each(child(mc, 'product_codes'), 'product_code').map((c) => c.text);

  const ip = 'manifest/image';
  const image = must(root, 'image');
  const name = r.plainName(must(image, 'name'), `${ip}/name`);
  const user = must(image, 'user').text;
  const type = must(image, 'type').text;
  const kernelName = child(image, 'kernel_name')?.text || undefined;
  const ancestry = each(child(image, 'ancestry'), 'ancestor_ami_id').map((a) => a.text);
  r.algorithm(must(image, 'digest'), `${ip}/digest`, 'SHA1');
  const digest = r.hex(must(image, 'digest'), `${ip}/digest`, 40);
  const size = r.decimal(must(image, 'size'), `${ip}/size`);
  const bundledSize = r.decimal(must(image, 'bundled_size'), `${ip}/bundled_size`);
  r.algorithm(must(image, 'ec2_encrypted_key'), `${ip}/ec2_encrypted_key`, 'AES-128-CBC');
  r.algorithm(must(image, 'user_encrypted_key'), `${ip}/user_encrypted_key`, 'AES-128-CBC');
  const ec2EncryptedKey = r.hex(must(image, 'ec2_encrypted_key'), `${ip}/ec2_encrypted_key`);
  const userEncryptedKey = r.hex(must(image, 'user_encrypted_key'), `${ip}/user_encrypted_key`);
  const ec2EncryptedIv = r.hex(must(image, 'ec2_encrypted_iv'), `${ip}/ec2_encrypted_iv`);
  const userEncryptedIv = r.hex(must(image, 'user_encrypted_iv'), `${ip}/user_encrypted_iv`);

  const pp = `${ip}/parts`;
  const partsEl = must(image, 'parts');
  const countText = partsEl.attributes.get('count');
  if (countText === undefined) r.fail(`<${pp}> has no count attribute`);
  if (!/^\d+$/.test(countText)) r.fail(`<${pp}> count '${short(countText)}' is not a whole number`);
  const partEls = each(partsEl, 'part');
  if (partEls.length === 0) r.fail(`<${pp}> lists no <part>`);
  if (Number(countText) !== partEls.length) r.fail(`<${pp}> count is ${countText} but it lists ${partEls.length} <part> elements`);
  const parts = partEls.map((el, i) => {
    const p = `${pp}/part[${i}]`;
    const index = el.attributes.get('index');
    if (index === undefined) r.fail(`<${p}> has no index attribute`);
    if (index !== String(i)) r.fail(`parts out of order: <part index='${short(index)}'> found where index ${i} was expected`);
    const filename = r.plainName(must(el, 'filename'), `${p}/filename`);
    r.algorithm(must(el, 'digest'), `${p}/digest`, 'SHA1');
    return { filename, digest: r.hex(must(el, 'digest'), `${p}/digest`, 40) };
  });

  const signature = r.hex(must(root, 'signature'), 'manifest/signature');

  return {
    version, bundler, architecture, blockDeviceMappings, kernelId, ramdiskId, productCodes,
    name, user, type, kernelName, ancestry, digest, size, bundledSize,
    ec2EncryptedKey, userEncryptedKey, ec2EncryptedIv, userEncryptedIv, parts, signature,
    signedText: xml.slice(mc.start, image.end),
    spans: { machineConfiguration: { start: mc.start, end: mc.end }, image: { start: image.start, end: image.end } },
  };
}
