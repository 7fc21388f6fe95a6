import { toolBundler } from '../../src/version.js';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ToolError, UsageError } from '../../src/errors.js';
import { loadCertificate, verifyHex } from '../../src/crypto/keys.js';
import {
  MAX_MANIFEST_BYTES, ManifestError, buildManifestXml, buildSignedText,
  parseManifest, type Manifest,
} from '../../src/format/manifest.js';
import { missingMappingWarnings, parseBlockDeviceMappingFlag } from '../../src/cli/bundle-options.js';
import { REFERENCE, key, reference } from '../helpers/paths.js';

/** Every manifest in the fixtures, with the user certificate that signed it (from case.json). */
function fixtureManifests(): { name: string; path: string; cert: string; otherCert: string }[] {
  const out = [];
  for (const c of readdirSync(REFERENCE)) {
    const json = JSON.parse(readFileSync(reference(c, 'case.json'), 'utf8')) as { keys: { user_cert: string } };
    const cert = join(REFERENCE, c, json.keys.user_cert);
    const otherCert = cert.includes('user4096') ? key('user-cert.pem') : key('user4096-cert.pem');
    for (const f of readdirSync(reference(c)).filter((f) => /\.manifest\.xml(\.bak)?$/.test(f))) {
      out.push({ name: `${c}/${f}`, path: reference(c, f), cert, otherCert });
    }
  }
  return out;
}

const FIXTURES = fixtureManifests();

/** The original's (and EC2's) rule, as an oracle: from the first '<machine_configuration>' to the next '</image>'. */
function originalSignedSubstring(xml: string): string {
  const start = xml.indexOf('<machine_configuration>');
  const end = xml.indexOf('</image>', start);
  if (start < 0 || end < 0) throw new Error('no signed region');
  return xml.slice(start, end + '</image>'.length);
}

describe('fixtures round-trip', () => {
  it('covers every reference manifest', () => {
    const names = FIXTURES.map((f) => f.name).sort();
    expect(names).toEqual([
      'manyparts/manyparts.img.manifest.xml',
      'migrated-options/customname.manifest.xml',
      'migrated-options/customname.manifest.xml.bak',
      'migrated/tiny.img.manifest.xml',
      'migrated/tiny.img.manifest.xml.bak',
      'multipart/multipart.img.manifest.xml',
      'options/customname.manifest.xml',
      'realcert/realcert.img.manifest.xml',
      'sparse-enddata/enddata.img.manifest.xml',
      'sparse/sparse.img.manifest.xml',
      'tiny/tiny.img.manifest.xml',
    ]);
  });

  for (const f of FIXTURES) {
    it(`${f.name}: parse then build gives the file byte for byte`, () => {
      const bytes = readFileSync(f.path);
      const parsed = parseManifest(bytes.toString('utf8'), f.path);
      const rebuilt = buildManifestXml(parsed, parsed.signature);
      expect(Buffer.from(rebuilt, 'utf8').equals(bytes)).toBe(true);
      expect(buildSignedText(parsed)).toBe(parsed.signedText);
      expect(parseManifest(rebuilt).signedText).toBe(parsed.signedText);
    });

    it(`${f.name}: the signed text read verifies with its user certificate only`, () => {
      const bytes = readFileSync(f.path);
      const { signature, signedText: signed, spans } = parseManifest(bytes, f.path);
      const xml = bytes.toString('utf8');
      // The span of the elements read is what the original's substring rule finds in the tool's output.
      expect(signed).toBe(originalSignedSubstring(xml));
      expect(xml.slice(spans.machineConfiguration.start, spans.image.end)).toBe(signed);
      expect(signed.startsWith('<machine_configuration>')).toBe(true);
      expect(signed.endsWith('</image>')).toBe(true);
      expect(verifyHex(loadCertificate(f.cert), signed, signature)).toBe(true);
      expect(verifyHex(loadCertificate(f.otherCert), signed, signature)).toBe(false);
      // One byte changed anywhere in the signed region (here: start, middle, end) breaks it.
      for (const at of [1, Math.floor(signed.length / 2), signed.length - 2]) {
        const c = signed[at] === 'a' ? 'b' : 'a';
        const tampered = signed.slice(0, at) + c + signed.slice(at + 1);
        expect(verifyHex(loadCertificate(f.cert), tampered, signature)).toBe(false);
      }
    });
  }

  it("matches analysis.json's signed-substring SHA-1 and length", () => {
    for (const c of readdirSync(REFERENCE)) {
      let analysis: { signed_substring_sha1?: string; signed_substring_len?: number };
      try {
        analysis = JSON.parse(readFileSync(reference(c, 'analysis.json'), 'utf8'));
      } catch {
        continue; // migrated cases have no analysis.json
      }
      const json = JSON.parse(readFileSync(reference(c, 'case.json'), 'utf8'));
      const signed = parseManifest(readFileSync(reference(c, json.manifest.file))).signedText;
      expect(signed.length, c).toBe(analysis.signed_substring_len);
      expect(createHash('sha1').update(signed).digest('hex'), c).toBe(analysis.signed_substring_sha1);
    }
  });

  it('reads the options fixture into typed fields', () => {
    const m = parseManifest(readFileSync(reference('options', 'customname.manifest.xml'), 'utf8'));
    expect(m).toMatchObject({
      version: '2007-10-10',
      bundler: { name: 'ec2-ami-tools', version: '1.5', release: '3' },
      architecture: 'i386',
      blockDeviceMappings: [
        { virtual: 'ami', device: 'sda1' }, { virtual: 'ephemeral0', device: 'sdb' },
        { virtual: 'root', device: '/dev/sda1' }, { virtual: 'swap', device: 'sda3' },
      ],
      kernelId: 'aki-12345678',
      ramdiskId: 'ari-87654321',
      // --productcodes 1234ABCD,5678EFGH: the original writes ONE element holding the raw string.
      productCodes: ['1234ABCD,5678EFGH'],
      name: 'customname',
      user: '123456789012',
      type: 'machine',
      ancestry: [],
      digest: '3d42f1353d7492d3702b73bf2530aea8921f402c',
      size: 1049353,
      bundledSize: 541888,
      parts: [{ filename: 'customname.part.0', digest: 'bd47a733f3cd7967d7030215038aa961b5bfa46b' }],
    });
    expect(m.kernelName).toBeUndefined();
    expect(m.userEncryptedKey).toHaveLength(1024);
    expect(m.ec2EncryptedKey).toHaveLength(512);
    expect(m.signature).toHaveLength(1024);
    const migrated = parseManifest(readFileSync(reference('migrated-options', 'customname.manifest.xml'), 'utf8'));
    expect(migrated.kernelId).toBe('aki-aaaa1111');
    expect(migrated.ramdiskId).toBeUndefined();
  });
});

const hex40 = (c: string) => c.repeat(40);

function sample(over: Partial<Manifest> = {}): Manifest {
  return {
    version: '2007-10-10',
    bundler: { name: 'amitools', version: '0.1', release: '0' },
    architecture: 'x86_64',
    blockDeviceMappings: [],
    productCodes: [],
    name: 'img',
    user: '123456789012',
    type: 'machine',
    ancestry: [],
    digest: hex40('a'),
    size: 1048576,
    bundledSize: 1048960,
    ec2EncryptedKey: '0a',
    userEncryptedKey: '0b',
    ec2EncryptedIv: '0c',
    userEncryptedIv: '0d',
    parts: [{ filename: 'img.part.0', digest: hex40('b') }],
    ...over,
  };
}

describe('buildManifestXml', () => {
  it('writes the minimal manifest exactly', () => {
    expect(buildManifestXml(sample(), 'ff00')).toBe(
      "<?xml version='1.0'?><manifest><version>2007-10-10</version><bundler><name>amitools</name><version>0.1</version>" +
        '<release>0</release></bundler><machine_configuration><architecture>x86_64</architecture></machine_configuration>' +
        `<image><name>img</name><user>123456789012</user><type>machine</type><digest algorithm='SHA1'>${hex40('a')}</digest>` +
        "<size>1048576</size><bundled_size>1048960</bundled_size><ec2_encrypted_key algorithm='AES-128-CBC'>0a</ec2_encrypted_key>" +
        "<user_encrypted_key algorithm='AES-128-CBC'>0b</user_encrypted_key><ec2_encrypted_iv>0c</ec2_encrypted_iv>" +
        "<user_encrypted_iv>0d</user_encrypted_iv><parts count='1'><part index='0'><filename>img.part.0</filename>" +
        `<digest algorithm='SHA1'>${hex40('b')}</digest></part></parts></image><signature>ff00</signature></manifest>`,
    );
  });

  it('writes every optional element in order, mappings sorted by virtual name in byte order', () => {
    const m = sample({
      blockDeviceMappings: ['swap', 'root', 'ephemeral2', 'ephemeral10', 'ephemeral0', 'ami'].map((v) => ({ virtual: v, device: `d-${v}` })),
      kernelId: 'aki-1', ramdiskId: 'ari-2', productCodes: ['A,B'], kernelName: 'vmlinuz', ancestry: ['ami-1', 'ami-2'],
    });
    const signed = buildSignedText(m);
    expect(signed).toBe(
      '<machine_configuration><architecture>x86_64</architecture><block_device_mapping>' +
        ['ami', 'ephemeral0', 'ephemeral10', 'ephemeral2', 'root', 'swap'].map((v) => `<mapping><virtual>${v}</virtual><device>d-${v}</device></mapping>`).join('') +
        '</block_device_mapping><kernel_id>aki-1</kernel_id><ramdisk_id>ari-2</ramdisk_id><product_codes><product_code>A,B</product_code></product_codes>' +
        '</machine_configuration><image><name>img</name><user>123456789012</user><type>machine</type><kernel_name>vmlinuz</kernel_name>' +
        '<ancestry><ancestor_ami_id>ami-1</ancestor_ami_id><ancestor_ami_id>ami-2</ancestor_ami_id></ancestry>' +
        `<digest algorithm='SHA1'>${hex40('a')}</digest>` + signed.slice(signed.indexOf('<size>')),
    );
    // The input list is not reordered in place.
    expect(m.blockDeviceMappings[0]!.virtual).toBe('swap');
  });

  it('sorts by UTF-8 bytes, not UTF-16 code units', () => {
    // U+1F600 is D83D… in UTF-16 (before U+E000) but F0 9F… in UTF-8 (after EE 80 80).
    const m = sample({ blockDeviceMappings: [{ virtual: '\u{1F600}', device: 'a' }, { virtual: '\uE000', device: 'b' }, { virtual: 'Z', device: 'c' }] });
    const order = [...buildSignedText(m).matchAll(/<virtual>([^<]*)<\/virtual>/g)].map((x) => x[1]);
    expect(order).toEqual(['Z', '\uE000', '\u{1F600}']);
  });

  it('leaves out optional elements that have no value', () => {
    const signed = buildSignedText(sample({ kernelId: '', ramdiskId: undefined, productCodes: [''], kernelName: '', ancestry: [] }));
    for (const tag of ['block_device_mapping', 'kernel_id', 'ramdisk_id', 'product_codes', 'product_code', 'kernel_name', 'ancestry']) {
      expect(signed).not.toContain(`<${tag}`);
    }
  });

  it('escapes & < > " \' and writes non-ASCII as raw UTF-8; the parser gives the text back', () => {
    const name = `a&b<c>d"e'f é ✓ \u{1F600}`;
    const xml = buildManifestXml(sample({ name, bundler: { name: 'x&y', version: '1', release: '2' } }), 'ab');
    expect(xml).toContain('<name>a&amp;b&lt;c&gt;d&quot;e&apos;f é ✓ \u{1F600}</name>');
    expect(xml).toContain('<name>x&amp;y</name>');
    expect(Buffer.from(xml, 'utf8').includes(Buffer.from('é', 'utf8'))).toBe(true);
    const back = parseManifest(xml);
    expect(back.name).toBe(name);
    expect(back.bundler.name).toBe('x&y');
    expect(buildManifestXml(back, back.signature)).toBe(xml);
  });

  it('writes numbers in decimal, even large ones', () => {
    const xml = buildManifestXml(sample({ size: 10 * 1024 ** 3, bundledSize: 123456789012345 }), 'ab');
    expect(xml).toContain('<size>10737418240</size><bundled_size>123456789012345</bundled_size>');
  });

  it('refuses to write what no reader accepts: names outside the shared rule, characters XML cannot carry', () => {
    expect(() => buildManifestXml(sample({ name: '.hidden' }), 'ab')).toThrow(/the image name '\.hidden' is not a plain file name/);
    expect(() => buildManifestXml(sample({ parts: [{ filename: 'a/b', digest: hex40('b') }] }), 'ab')).toThrow(/part 0's file name 'a\/b' is not a plain file name/);
    expect(() => buildManifestXml(sample({ kernelId: 'aki-\u001b]0;x' }), 'ab')).toThrow(/the kernel id 'aki-\\x1b\]0;x' holds a character XML cannot carry \(U\+001B\)/);
    expect(() => buildManifestXml(sample({ productCodes: ['\uFFFE'] }), 'ab')).toThrow(/product code .* \(U\+FFFE\)/);
    expect(() => buildManifestXml(sample({ blockDeviceMappings: [{ virtual: 'ami', device: 'sda\u0000' }] }), 'ab')).toThrow(/block device mapping/);
  });

  it('what it writes, the reader reads back field for field', () => {
    const names = ['v1..2.img', 'a b', 'x&y<z>', "q'uo\"te", 'é✓\u{1F600}', 'tab\tin.img'.replace('\t', '_'), 'n\u00a0bsp'];
    for (const name of names) {
      const m = sample({
        name, parts: [{ filename: `${name}.part.0`, digest: hex40('c') }], kernelId: 'aki-\u0085', architecture: 'a\tb\nc',
        blockDeviceMappings: [{ virtual: 'ami', device: 'sda1' }], productCodes: ['P&Q'], ancestry: ['ami-1'], kernelName: 'k<',
      });
      const back = parseManifest(buildManifestXml(m, 'ab'));
      const { signature, signedText, spans, ...fields } = back;
      expect(fields).toEqual(m);
      expect(signedText).toBe(buildSignedText(m));
      expect(signature).toBe('ab');
      expect(spans.image.end).toBeGreaterThan(spans.machineConfiguration.start);
    }
  });

  it('refuses to write fields that would make an invalid manifest', () => {
    expect(() => buildManifestXml(sample({ digest: 'xyz' }), 'ab')).toThrow(ManifestError);
    expect(() => buildManifestXml(sample({ parts: [] }), 'ab')).toThrow(/no parts/);
    expect(() => buildManifestXml(sample({ size: 1.5 }), 'ab')).toThrow(/size/);
    expect(() => buildManifestXml(sample({ version: '3' }), 'ab')).toThrow(/version/);
    expect(() => buildManifestXml(sample(), 'not hex')).toThrow(/signature/);
  });

  it('toolBundler splits our x.y.z version like the original (1.5.3 → 1.5 / 3)', () => {
    expect(toolBundler('0.1.0')).toEqual({ name: 'amitools', version: '0.1', release: '0' });
    expect(toolBundler('1.5.3')).toEqual({ name: 'amitools', version: '1.5', release: '3' });
    expect(toolBundler('2.0.0-rc.1')).toEqual({ name: 'amitools', version: '2.0', release: '0-rc.1' });
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
    expect(`${toolBundler().version}.${toolBundler().release}`).toBe(pkg.version);
  });
});

describe('parseManifest', () => {
  const good = buildManifestXml(sample(), 'abcd');
  const SRC = '/tmp/bundles/img.manifest.xml';

  /** The error parseManifest gives for `xml`, checked to be a one-line ManifestError naming the file. */
  function errorFor(xml: string): string {
    try {
      parseManifest(xml, SRC);
    } catch (err) {
      expect(err).toBeInstanceOf(ManifestError);
      expect(err).toBeInstanceOf(ToolError);
      expect((err as ManifestError).code).toBe('MANIFEST_INVALID');
      const msg = (err as Error).message;
      expect(msg).toContain(SRC);
      expect(msg).not.toContain('\n');
      return msg;
    }
    throw new Error('parseManifest accepted a bad manifest');
  }
  const without = (tag: string) => good.replace(new RegExp(`<${tag}(?: [^>]*)?>.*?</${tag}>`), '');
  const replace = (from: string, to: string) => {
    expect(good).toContain(from);
    return good.replace(from, to);
  };

  it('keeps values as strings: no number coercion of hex, ids or leading zeros', () => {
    const digest = '1e10' + '0'.repeat(36);
    const m = parseManifest(buildManifestXml(sample({ digest, user: '012345678901', name: '0x10', architecture: '1e5', ec2EncryptedKey: '1e10' }), 'ab'));
    expect(m.digest).toBe(digest);
    expect(m.user).toBe('012345678901');
    expect(m.name).toBe('0x10');
    expect(m.architecture).toBe('1e5');
    expect(m.ec2EncryptedKey).toBe('1e10');
    expect(m.size).toBe(1048576);
  });

  it('decodes numeric character references', () => {
    expect(parseManifest(replace('<name>img</name>', '<name>&#105;m&#x67;&#233;</name>')).name).toBe('imgé');
    expect(errorFor(replace('<name>img</name>', '<name>&#0;</name>'))).toMatch(/character reference/);
    expect(errorFor(replace('<name>img</name>', '<name>a&nbsp;b</name>'))).toMatch(/bad entity or character reference '&' in <manifest\/image\/name>/);
  });

  it('rejects what is not a manifest', () => {
    expect(errorFor('')).toMatch(/empty/);
    expect(errorFor('hello, world')).toMatch(/not well-formed XML/);
    expect(errorFor(good.slice(0, 200))).toMatch(/not well-formed XML/);
    expect(errorFor("<?xml version='1.0'?><html><body/></html>")).toMatch(/root element is not <manifest>/);
    expect(errorFor(`<!DOCTYPE manifest [<!ENTITY x "y">]>${good.replace("<?xml version='1.0'?>", '')}`)).toMatch(/DOCTYPE/);
  });

  it('names the manifest version it does not read', () => {
    expect(errorFor(replace('<version>2007-10-10</version>', '<version>3</version>'))).toMatch(/manifest version 3 .*not supported; only 2007-10-10/);
    expect(errorFor(replace('<version>2007-10-10</version>', '<version>2007-08-29</version>'))).toMatch(/manifest version 2007-08-29 is not supported/);
    expect(errorFor(replace('<version>2007-10-10</version>', '<version>2099-01-01</version>'))).toMatch(/unsupported manifest version '2099-01-01'/);
    expect(errorFor(good.replace('<version>2007-10-10</version>', ''))).toMatch(/missing <manifest\/version> element/);
  });

  it('names each missing mandatory element', () => {
    expect(errorFor(without('image'))).toMatch(/missing <manifest\/image> element/);
    expect(errorFor(without('bundler'))).toMatch(/missing <manifest\/bundler> element/);
    expect(errorFor(without('machine_configuration'))).toMatch(/missing <manifest\/machine_configuration> element/);
    expect(errorFor(without('architecture'))).toMatch(/missing <manifest\/machine_configuration\/architecture> element/);
    expect(errorFor(replace('<name>img</name>', ''))).toMatch(/missing <manifest\/image\/name> element/);
    expect(errorFor(replace(`<digest algorithm='SHA1'>${hex40('a')}</digest>`, ''))).toMatch(/missing <manifest\/image\/digest> element/);
    expect(errorFor(without('parts'))).toMatch(/missing <manifest\/image\/parts> element/);
    expect(errorFor(without('size'))).toMatch(/missing <manifest\/image\/size> element/);
    expect(errorFor(without('user_encrypted_key'))).toMatch(/missing <manifest\/image\/user_encrypted_key> element/);
    expect(errorFor(without('signature'))).toMatch(/missing <manifest\/signature> element/);
    expect(errorFor(replace('<filename>img.part.0</filename>', ''))).toMatch(/missing <manifest\/image\/parts\/part\[0\]\/filename> element/);
  });

  it('rejects malformed values, naming the element', () => {
    expect(errorFor(replace(hex40('a'), 'g'.repeat(40)))).toMatch(/<manifest\/image\/digest> is not a 40-digit hex value/);
    expect(errorFor(replace(hex40('a'), 'a'.repeat(39)))).toMatch(/<manifest\/image\/digest> is not a 40-digit hex/);
    expect(errorFor(replace(hex40('b'), 'z'.repeat(40)))).toMatch(/<manifest\/image\/parts\/part\[0\]\/digest> is not a 40-digit hex/);
    expect(errorFor(replace('>0b<', '>0x0b<'))).toMatch(/<manifest\/image\/user_encrypted_key> is not/);
    expect(errorFor(replace('>0c<', '>abc<'))).toMatch(/<manifest\/image\/ec2_encrypted_iv> has an odd number of hex digits/);
    expect(errorFor(replace('<signature>abcd', '<signature>wxyz'))).toMatch(/<manifest\/signature> is not/);
    for (const bad of ['12a', '1e6', '-1', '', ' 1', '99999999999999999999']) {
      expect(errorFor(replace('<size>1048576</size>', `<size>${bad}</size>`))).toMatch(/<manifest\/image\/size> is not a whole number/);
    }
    expect(errorFor(replace('<bundled_size>1048960<', '<bundled_size>1.5<'))).toMatch(/<manifest\/image\/bundled_size> is not a whole number/);
    expect(errorFor(replace("<digest algorithm='SHA1'>a", "<digest algorithm='MD5'>a"))).toMatch(/algorithm 'MD5', only SHA1/);
    expect(errorFor(replace('<name>img</name>', '<name><b>x</b></name>'))).toMatch(/<manifest\/image\/name> should hold text/);
    expect(errorFor(replace('<name>img</name>', '<name>img</name><name>again</name>'))).toMatch(/more than one <manifest\/image\/name>/);
  });

  it('refuses part and image names that are not plain file names, by the shared rule', () => {
    for (const bad of ['../evil', '/etc/passwd', 'a/b', 'a\\b', '.', '..', '.bashrc', 'a&#127;b', 'a&#x85;b', 'a\tb', 'a\nb']) {
      expect(errorFor(replace('<filename>img.part.0</filename>', `<filename>${bad}</filename>`))).toMatch(/part\[0\]\/filename> .* is not a plain file name/);
      expect(errorFor(replace('<name>img</name>', `<name>${bad}</name>`))).toMatch(/<manifest\/image\/name> .* is not a plain file name/);
    }
    // '..' inside a name is a plain name: what ec2-bundle-image -i v1..2.img writes is read back.
    const dotted = buildManifestXml(sample({ name: 'v1..2.img', parts: [{ filename: 'v1..2.img.part.0', digest: hex40('b') }] }), 'ab');
    expect(parseManifest(dotted)).toMatchObject({ name: 'v1..2.img', parts: [{ filename: 'v1..2.img.part.0' }] });
  });

  it('escapes control characters of a name it quotes', () => {
    const msg = errorFor(replace('<filename>img.part.0</filename>', '<filename>&#x9b;]0;pwned</filename>'));
    expect(msg).toContain("'\\x9b]0;pwned'");
    expect(msg).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
  });

  it('checks the part list: count, order and presence', () => {
    const two = buildManifestXml(sample({ parts: [{ filename: 'p0', digest: hex40('1') }, { filename: 'p1', digest: hex40('2') }] }), 'ab');
    expect(parseManifest(two).parts.map((p) => p.filename)).toEqual(['p0', 'p1']);
    const swapped = two.replace("<part index='0'>", "<part index='X'>").replace("<part index='1'>", "<part index='0'>").replace("<part index='X'>", "<part index='1'>");
    expect(errorFor(swapped)).toMatch(/parts out of order: <part index='1'> found where index 0 was expected/);
    expect(errorFor(two.replace("count='2'", "count='3'"))).toMatch(/count is 3 but it lists 2 <part> elements/);
    expect(errorFor(two.replace("count='2'", "count='two'"))).toMatch(/count 'two' is not a whole number/);
    expect(errorFor(two.replace(" count='2'", ''))).toMatch(/<manifest\/image\/parts> has no count attribute/);
    expect(errorFor(two.replace(" index='1'", ''))).toMatch(/part\[1\]> has no index attribute/);
    expect(errorFor(good.replace(/<parts count='1'>.*<\/parts>/, "<parts count='0'></parts>"))).toMatch(/lists no <part>/);
  });

  it('accepts whitespace between elements (a pretty-printed manifest) but keeps values exact', () => {
    const pretty = good.replace(/></g, '>\n  <');
    const m = parseManifest(pretty);
    expect(m.name).toBe('img');
    expect(m.parts).toEqual(sample().parts);
  });

  it('without a source, the message still names the element', () => {
    expect(() => parseManifest(without('image'))).toThrow(/^Invalid manifest: missing <manifest\/image> element\.$/);
  });
});

describe('signed text: the exact span of the elements read', () => {
  it('is the text from <machine_configuration> through </image>, with their offsets', () => {
    const xml = buildManifestXml(sample({ name: 'a&b' }), 'abcd');
    const m = parseManifest(xml);
    expect(m.signedText).toBe(buildSignedText(sample({ name: 'a&b' })));
    expect(m.signedText).toContain('<name>a&amp;b</name>'); // the text as written, not as decoded
    const { machineConfiguration: mc, image } = m.spans;
    expect(mc.start).toBe(xml.indexOf('<machine_configuration>'));
    expect(mc.end).toBe(xml.indexOf('</machine_configuration>') + '</machine_configuration>'.length);
    expect(image.start).toBe(mc.end);
    expect(image.end).toBe(xml.indexOf('</image>') + '</image>'.length);
    expect(xml.slice(mc.start, image.end)).toBe(m.signedText);
  });

  it('keeps whitespace inside and between the two elements, as the original verifies it', () => {
    const pretty = buildManifestXml(sample(), 'ab').replace(/></g, '>\r\n\t<');
    const m = parseManifest(pretty);
    expect(m.signedText).toBe(originalSignedSubstring(pretty));
    expect(m.signedText).toContain('</machine_configuration>\r\n\t<image>');
  });

  it('from bytes: the UTF-8 of the signed text is exactly the bytes of the span on disk', () => {
    const xml = buildManifestXml(sample({ name: 'ïmg✓\u{1F600}', bundler: { name: 'bündler', version: '1', release: '2' } }), 'ab');
    const bytes = Buffer.from(xml, 'utf8');
    const m = parseManifest(bytes);
    const start = bytes.indexOf('<machine_configuration>');
    const end = bytes.indexOf('</image>') + '</image>'.length;
    expect(Buffer.from(m.signedText, 'utf8').equals(bytes.subarray(start, end))).toBe(true);
    expect(m.name).toBe('ïmg✓\u{1F600}');
  });

  it('refuses bytes that are not UTF-8 (decoding them would change the signed bytes)', () => {
    const bytes = Buffer.from(buildManifestXml(sample({ name: 'imgX' }), 'ab'), 'utf8');
    bytes[bytes.indexOf('imgX') + 3] = 0xff;
    expect(() => parseManifest(bytes, 'x.xml')).toThrow(/^Invalid manifest 'x\.xml': not well-formed XML: it is not UTF-8 text\.$/);
  });

  it('accepts what other writers may add around the structure, and the span is still the original rule', () => {
    const good = buildManifestXml(sample({ kernelId: 'aki-1' }), 'ab');
    const variants = [
      good.replace("<?xml version='1.0'?>", ''),
      good.replace("<?xml version='1.0'?>", '<?xml version="1.0" encoding="UTF-8"?>\n'),
      good.replace("<?xml version='1.0'?>", "<?xml version='1.0' encoding='utf-8' standalone='yes'?>"),
      '\uFEFF' + good,
      good.replace("<digest algorithm='SHA1'>", '<digest algorithm="SHA1">'),
      good.replace("<parts count='1'>", "<parts  count = '1' >"),
      good + '\n',
    ];
    for (const v of variants) {
      const m = parseManifest(v);
      expect(m.signedText, v.slice(0, 60)).toBe(originalSignedSubstring(v));
      expect(m.kernelId).toBe('aki-1');
    }
    // An empty optional element, however written, is left out.
    expect(parseManifest(good.replace('<kernel_id>aki-1</kernel_id>', '<kernel_id/>')).kernelId).toBeUndefined();
  });
});

describe('parseManifest reads only the structure the tool writes', () => {
  const SRC = 'hostile.manifest.xml';
  const head = "<?xml version='1.0'?><manifest><version>2007-10-10</version><bundler><name>amitools</name><version>0.1</version><release>0</release></bundler>";
  const tail = '<signature>abcd</signature></manifest>';
  /** The victim's genuinely signed region, and an attacker's own. */
  const victim = buildSignedText(sample({ name: 'victim.img' }));
  const evil = buildSignedText(sample({ name: 'evil.img', digest: hex40('e'), parts: [{ filename: 'evil.img.part.0', digest: hex40('f') }] }));
  const good = head + victim + tail;

  function refusal(xml: string): ManifestError {
    try {
      parseManifest(xml, SRC);
    } catch (err) {
      expect(err).toBeInstanceOf(ManifestError);
      expect((err as ManifestError).code).toBe('MANIFEST_INVALID');
      expect((err as Error).message).toMatch(/^Invalid manifest 'hostile\.manifest\.xml': .*\.$/);
      expect((err as Error).message).not.toMatch(/[\n\u0000-\u001f]/);
      return err as ManifestError;
    }
    throw new Error(`accepted: ${xml.slice(0, 200)}`);
  }

  it('the test manifest itself is accepted', () => {
    expect(parseManifest(good).signedText).toBe(victim);
  });

  it.each([
    ['the signed region in a comment', head + `<!--${victim}-->` + evil + tail, /comments are not allowed in a manifest/],
    ['the signed region in a processing instruction', head + `<?x ${victim}?>` + evil + tail, /processing instructions are not allowed/],
    ['the signed region in an unknown element', head + `<x>${victim}</x>` + evil + tail, /unknown element <manifest\/x>/],
    ['the signed region in CDATA', head + `<![CDATA[${victim}]]>` + evil + tail, /CDATA sections are not allowed/],
    ['the signed region in a DOCTYPE', head.replace('<manifest>', `<!DOCTYPE manifest [<!ENTITY v "${victim}">]><manifest>`) + evil + tail, /DOCTYPE declarations are not allowed/],
    ['the signed region in a known container', head.replace('</bundler>', `${victim}</bundler>`) + evil + tail, /unknown element <manifest\/bundler\/machine_configuration>/],
    ['the signed region in a text element', head.replace('<release>0</release>', `<release>${victim}</release>`) + evil + tail, /<manifest\/bundler\/release> should hold text, not elements/],
    ['the signed region in an attribute', head + evil.replace("<parts count='1'>", `<parts count='1' x='${victim}'>`) + tail, /'<' in the value of attribute x of <manifest\/image\/parts>/],
    ['a second machine_configuration and image appended', head + victim + evil + tail, /more than one <manifest\/machine_configuration> element/],
    ['a second machine_configuration and image prepended', head + evil + victim + tail, /more than one <manifest\/machine_configuration> element/],
    ['a second image', head + victim + evil.slice(evil.indexOf('<image>')) + tail, /more than one <manifest\/image> element/],
    ['a second parts list', head + victim.replace('</parts>', `</parts>${evil.slice(evil.indexOf('<parts'), evil.indexOf('</image>'))}`) + tail, /more than one <manifest\/image\/parts> element/],
    ['a second part name', head + victim.replace('</filename>', '</filename><filename>evil</filename>') + tail, /more than one <manifest\/image\/parts\/part\[0\]\/filename> element/],
    ['a second signature', head + victim + tail.replace('</manifest>', '<signature>abcd</signature></manifest>'), /more than one <manifest\/signature> element/],
    ['a second root element', good + good.replace("<?xml version='1.0'?>", ''), /a second root element/],
    ['a comment after the root', good + '<!-- -->', /comments are not allowed/],
    ['a processing instruction before the root', good.replace('<manifest>', '<?evil x?><manifest>'), /processing instructions are not allowed/],
    ['a declaration that is not first', ' ' + good, /processing instructions are not allowed .*only the XML declaration, first in the file/],
    ['another XML version', good.replace("version='1.0'?>", "version='1.1'?>"), /the XML declaration is not/],
    ['another encoding', good.replace("version='1.0'?>", "version='1.0' encoding='ISO-8859-1'?>"), /the XML declaration is not/],
    ['elements out of order', good.replace(/(<size>\d+<\/size>)(<bundled_size>\d+<\/bundled_size>)/, '$2$1'), /<manifest\/image\/size> is out of order: the format puts it before <manifest\/image\/bundled_size>/],
    ['image before machine_configuration', head + victim.slice(victim.indexOf('<image>')) + victim.slice(0, victim.indexOf('<image>')) + tail, /<manifest\/machine_configuration> is out of order/],
    ['an unknown attribute', good.replace('<name>victim.img', "<name lang='en'>victim.img"), /<manifest\/image\/name> has an attribute the format does not have: 'lang'/],
    ['a namespace declaration', good.replace('<manifest>', "<manifest xmlns='urn:x'>"), /<manifest> has an attribute the format does not have: 'xmlns'/],
    ['a namespaced element', good.replace('<user>', '<x:user>').replace('</user>', '</x:user>'), /not well-formed XML/],
    ['a repeated attribute', good.replace("<parts count='1'>", "<parts count='1' count='1'>"), /attribute count of <manifest\/image\/parts> is repeated/],
    ['text mixed with elements', good.replace('<image>', '<image>text'), /<manifest\/image> mixes text with elements/],
    ['text in a container', good.replace('<ancestry>', '').replace("<digest algorithm='SHA1'>a", "<ancestry>ami-1</ancestry><digest algorithm='SHA1'>a"), /<manifest\/image\/ancestry> should hold elements, not text/],
    ['an unknown entity', good.replace('victim.img', 'victim&ent;.img'), /bad entity or character reference '&' in <manifest\/image\/name>/],
    ['a reference to a character XML does not allow', good.replace('victim.img', 'victim&#27;.img'), /bad entity or character reference '&#27;'/],
    ['a raw control character', good.replace('victim.img', 'victim\u001b.img'), /character U\+001B is not allowed in XML/],
    ["']]>' in text", good.replace('victim.img', 'victim]]>.img'), /']]>' in character data/],
    ['a mismatched end tag', good.replace('</user>', '</usr>'), /<\/usr> found where <\/user> closes <manifest\/image\/user>/],
    ['an unclosed element', good.slice(0, good.indexOf('</image>')), /<manifest\/image\/parts> is not closed|<manifest\/image> is not closed/],
    ['text before the root', 'x' + good.replace("<?xml version='1.0'?>", ''), /text before the root element/],
    ['text after the root', good + 'x', /text after the root element/],
    ['deep nesting', good.replace('</bundler>', `</bundler>${'<x>'.repeat(100000)}`), /nested more than 16 deep/],
  ])('refuses %s', (_label, xml, message) => {
    expect(refusal(xml).message).toMatch(message);
  });

  it('names the line and column of what it refuses', () => {
    const at = good.indexOf('<machine_configuration>');
    expect(refusal(good.replace('<machine_configuration>', '<!---->' + '<machine_configuration>')).message)
      .toContain(`(line 1, column ${at + 1})`);
    expect(refusal(good.replace(/></g, '>\n<').replace('<user>', '<!---->\n<user>')).message).toMatch(/\(line \d+, column 1\)\.$/);
  });

  it('refuses a manifest over the size bound without reading it', () => {
    const big = good.replace('</bundler>', `</bundler>${' '.repeat(MAX_MANIFEST_BYTES)}`);
    expect(refusal(big).message).toMatch(/over 1 MiB/);
    expect(() => parseManifest(Buffer.alloc(MAX_MANIFEST_BYTES + 1, 0x20))).toThrow(/over 1 MiB/);
  });
});

describe('parseBlockDeviceMappingFlag', () => {
  it('splits on , then =, trims, keeps the last value of a repeated key', () => {
    expect(parseBlockDeviceMappingFlag('ami=sda1,root=/dev/sda1')).toEqual([
      { virtual: 'ami', device: 'sda1' }, { virtual: 'root', device: '/dev/sda1' },
    ]);
    expect(parseBlockDeviceMappingFlag(' ami = sda1 ,\troot=/dev/sda1 , swap= sda3')).toEqual([
      { virtual: 'ami', device: 'sda1' }, { virtual: 'root', device: '/dev/sda1' }, { virtual: 'swap', device: 'sda3' },
    ]);
    expect(parseBlockDeviceMappingFlag('ami=sda1,root=sda2,ami=sdz')).toEqual([
      { virtual: 'ami', device: 'sdz' }, { virtual: 'root', device: 'sda2' },
    ]);
  });

  it('rejects entries that are not virtual=device with the original-like message', () => {
    for (const bad of ['', 'ami', 'ami=', '=sda1', 'ami=sda1,', 'ami=sda1,,root=sda2', 'a=b=c', 'my disk=sda1']) {
      let err: unknown;
      try {
        parseBlockDeviceMappingFlag(bad);
      } catch (e) {
        err = e;
      }
      expect(err, bad).toBeInstanceOf(UsageError);
      expect((err as UsageError).code).toBe('INVALID_OPTION');
      expect((err as Error).message).toContain(`--block-device-mapping has invalid value '${bad}'`);
    }
  });

  it('feeds the builder, which sorts the mappings', () => {
    const m = sample({ blockDeviceMappings: parseBlockDeviceMappingFlag('root=/dev/sda1,ami=sda1,ephemeral0=sdb,swap=sda3') });
    const options = parseManifest(readFileSync(reference('options', 'customname.manifest.xml'), 'utf8'));
    expect(buildSignedText(m)).toContain(
      buildSignedText(options).match(/<block_device_mapping>.*<\/block_device_mapping>/)![0],
    );
  });
});

describe('missingMappingWarnings', () => {
  const warn = (v: string) => `Block-device-mapping has no '${v}' entry. A launch-time default will be used.`;
  it("warns for a missing 'root' and a missing 'ami', only when -B was given", () => {
    expect(missingMappingWarnings([])).toEqual([]);
    expect(missingMappingWarnings(parseBlockDeviceMappingFlag('ami=sda1,root=/dev/sda1'))).toEqual([]);
    expect(missingMappingWarnings(parseBlockDeviceMappingFlag('ami=sda1'))).toEqual([warn('root')]);
    expect(missingMappingWarnings(parseBlockDeviceMappingFlag('root=/dev/sda1'))).toEqual([warn('ami')]);
    expect(missingMappingWarnings(parseBlockDeviceMappingFlag('ephemeral0=sdb'))).toEqual([warn('root'), warn('ami')]);
  });
});
