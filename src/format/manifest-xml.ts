/**
 * A strict reader for the XML the manifest is written in: elements, single- or double-quoted attributes, character
 * data with the five named entities and character references, whitespace between elements, and an optional leading
 * XML declaration — nothing else. Comments, processing instructions, DOCTYPE, CDATA and text mixed with elements are
 * refused, and every element comes back with the exact span of the input it was read from.
 *
 * Hand-written on purpose: the signature must be checked over exactly the text of the elements that are read, and
 * general XML parsers (fast-xml-parser, sax) neither report element spans nor refuse the constructs that let a
 * signed region hide in a comment or an unknown element while other elements are read. The grammar is small.
 */

export interface XmlElement {
  name: string;
  /** Decoded attribute values, in document order. */
  attributes: Map<string, string>;
  children: XmlElement[];
  /** Decoded character data of an element without children ('' when it has children: whitespace between them). */
  text: string;
  /** The element's span in the input: from the '<' of its start tag up to just after the '>' of its end tag. */
  start: number;
  end: number;
  /** The path of element names from the root, e.g. 'manifest/image/name' (for messages). */
  path: string;
}

/** The input is not in the accepted subset; `offset` is where in the input. */
export class StrictXmlError extends Error {
  constructor(message: string, readonly offset: number) {
    super(message);
    this.name = 'StrictXmlError';
  }
}

/** Where `offset` is, as 'line L, column C' (both from 1). */
export function lineAndColumn(xml: string, offset: number): string {
  let line = 1;
  let lineStart = 0;
  for (let i = xml.indexOf('\n'); i >= 0 && i < offset; i = xml.indexOf('\n', i + 1)) {
    line++;
    lineStart = i + 1;
  }
  return `line ${line}, column ${offset - lineStart + 1}`;
}

// Characters XML 1.0 does not allow anywhere: C0 controls but tab, LF, CR; U+FFFE/U+FFFF; unpaired surrogates.
const NOT_XML_CHAR = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const DECLARATION = /<\?xml[ \t\r\n]+version[ \t\r\n]*=[ \t\r\n]*(['"])1\.0\1(?:[ \t\r\n]+encoding[ \t\r\n]*=[ \t\r\n]*(['"])[Uu][Tt][Ff]-8\2)?(?:[ \t\r\n]+standalone[ \t\r\n]*=[ \t\r\n]*(['"])(?:yes|no)\3)?[ \t\r\n]*\?>/y;
const NAME = /[A-Za-z_][A-Za-z0-9._-]*/y;
const WHITESPACE = /[ \t\r\n]*/y;
const REFERENCE = /&(?:(amp|lt|gt|quot|apos)|#([0-9]+)|#x([0-9a-fA-F]+));|&/g;
const NAMED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

const FORBIDDEN: [string, string][] = [
  ['<!--', 'comments are not allowed in a manifest'],
  ['<![CDATA[', 'CDATA sections are not allowed in a manifest'],
  ['<!DOCTYPE', 'DOCTYPE declarations are not allowed in a manifest'],
  ['<!', "markup declarations ('<!') are not allowed in a manifest"],
  ['<?', 'processing instructions are not allowed in a manifest (only the XML declaration, first in the file)'],
];

const isXmlChar = (c: number) => c === 0x9 || c === 0xa || c === 0xd || (c >= 0x20 && c <= 0xd7ff) || (c >= 0xe000 && c <= 0xfffd) || (c >= 0x10000 && c <= 0x10ffff);

/** Reads `xml` into its root element; throws StrictXmlError at the first thing outside the accepted subset. */
export function readStrictXml(xml: string, maxDepth = 16): XmlElement {
  const bad = NOT_XML_CHAR.exec(xml);
  if (bad) throw new StrictXmlError(`not well-formed XML: character U+${bad[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')} is not allowed in XML`, bad.index);

  let pos = xml.charCodeAt(0) === 0xfeff ? 1 : 0; // a byte order mark is not part of the document
  const fail = (message: string, at = pos): never => { throw new StrictXmlError(message, at); };

  const skipWhitespace = () => {
    WHITESPACE.lastIndex = pos;
    WHITESPACE.exec(xml);
    pos = WHITESPACE.lastIndex;
  };
  const forbidden = () => {
    for (const [prefix, message] of FORBIDDEN) if (xml.startsWith(prefix, pos)) fail(message);
  };
  const name = (what: string): string => {
    NAME.lastIndex = pos;
    const m = NAME.exec(xml);
    if (!m) return fail(pos >= xml.length ? 'not well-formed XML: the file ends inside a tag' : `not well-formed XML: expected ${what}`);
    pos = NAME.lastIndex;
    if (pos >= xml.length) fail('not well-formed XML: the file ends inside a tag');
    return m[0];
  };
  const decode = (raw: string, at: number, path: string): string =>
    raw.replace(REFERENCE, (all: string, named: string | undefined, dec: string | undefined, hex: string | undefined, offset: number) => {
      if (named) return NAMED[named]!;
      const code = dec !== undefined ? Number(dec) : hex !== undefined ? parseInt(hex, 16) : NaN;
      if (!isXmlChar(code)) fail(`bad entity or character reference '${all.slice(0, 12)}' in <${path}> (escape a literal '&' as '&amp;')`, at + offset);
      return String.fromCodePoint(code);
    });

  /** A start tag at pos ('<' already checked): its element, and whether it was empty ('<x/>'). */
  const startTag = (parentPath: string): { el: XmlElement; empty: boolean } => {
    const start = pos;
    pos++;
    const tag = name("an element name after '<'");
    const path = parentPath ? `${parentPath}/${tag}` : tag;
    const attributes = new Map<string, string>();
    for (;;) {
      const before = pos;
      skipWhitespace();
      if (xml.startsWith('>', pos) || xml.startsWith('/>', pos)) break;
      if (pos === before) fail(`not well-formed XML: expected whitespace, '>' or '/>' in the start tag of <${path}>`);
      const attr = name(`an attribute name or '>' in the start tag of <${path}>`);
      skipWhitespace();
      if (xml[pos] !== '=') fail(`not well-formed XML: expected '=' after attribute ${attr} of <${path}>`);
      pos++;
      skipWhitespace();
      const quote = xml[pos];
      if (quote !== "'" && quote !== '"') fail(`not well-formed XML: the value of attribute ${attr} of <${path}> is not quoted`);
      const close = xml.indexOf(quote!, pos + 1);
      if (close < 0) fail(`not well-formed XML: the value of attribute ${attr} of <${path}> is not closed`);
      const raw = xml.slice(pos + 1, close);
      const lt = raw.indexOf('<');
      if (lt >= 0) fail(`not well-formed XML: '<' in the value of attribute ${attr} of <${path}>`, pos + 1 + lt);
      if (attributes.has(attr)) fail(`not well-formed XML: attribute ${attr} of <${path}> is repeated`);
      attributes.set(attr, decode(raw, pos + 1, `${path} ${attr}`));
      pos = close + 1;
    }
    const empty = xml[pos] === '/';
    pos += empty ? 2 : 1;
    return { el: { name: tag, attributes, children: [], text: '', start, end: empty ? pos : -1, path }, empty };
  };

  // Prolog: [BOM] [declaration] whitespace.
  DECLARATION.lastIndex = pos;
  if (DECLARATION.test(xml)) pos = DECLARATION.lastIndex;
  else if (xml.startsWith('<?xml', pos)) fail("the XML declaration is not <?xml version='1.0'?> (optionally with encoding='UTF-8')");
  skipWhitespace();
  forbidden();
  if (pos >= xml.length) fail('not well-formed XML: no root element');
  if (xml[pos] !== '<') fail('not well-formed XML: text before the root element');

  const first = startTag('');
  const root = first.el;
  // Open elements, innermost last, with whether their character data held anything but whitespace.
  const open: { el: XmlElement; textAt: number }[] = first.empty ? [] : [{ el: root, textAt: -1 }];
  while (open.length > 0) {
    const top = open[open.length - 1]!;
    const lt = xml.indexOf('<', pos);
    if (lt < 0) fail(`not well-formed XML: <${top.el.path}> is not closed (the file ends first)`, xml.length);
    if (lt > pos) {
      const raw = xml.slice(pos, lt);
      const cdataEnd = raw.indexOf(']]>');
      if (cdataEnd >= 0) fail("not well-formed XML: ']]>' in character data", pos + cdataEnd);
      top.el.text += decode(raw, pos, top.el.path);
      if (top.textAt < 0 && /[^ \t\r\n]/.test(raw)) top.textAt = pos + raw.search(/[^ \t\r\n]/);
      pos = lt;
    }
    if (xml.startsWith('</', pos)) {
      pos += 2;
      const tag = name(`the name of the end tag of <${top.el.path}>`);
      if (tag !== top.el.name) fail(`not well-formed XML: </${tag}> found where </${top.el.name}> closes <${top.el.path}>`);
      skipWhitespace();
      if (xml[pos] !== '>') fail(`not well-formed XML: expected '>' to end </${tag}>`);
      pos++;
      top.el.end = pos;
      if (top.el.children.length > 0) {
        if (top.textAt >= 0) fail(`<${top.el.path}> mixes text with elements`, top.textAt);
        top.el.text = '';
      }
      open.pop();
      continue;
    }
    forbidden();
    const { el, empty } = startTag(top.el.path);
    top.el.children.push(el);
    if (!empty) {
      if (open.length >= maxDepth) fail(`elements are nested more than ${maxDepth} deep`, el.start);
      open.push({ el, textAt: -1 });
    }
  }

  skipWhitespace();
  if (pos < xml.length) {
    forbidden();
    fail(xml[pos] === '<' ? 'not well-formed XML: a second root element' : 'not well-formed XML: text after the root element');
  }
  return root;
}
