/**
 * Text from an input (a manifest, a tar header, a bucket listing) made safe to print on a terminal: C0 and C1 control
 * characters, DEL, and the Unicode line separators and bidirectional overrides are shown as escapes, so that a name
 * holding `ESC]0;…` cannot retitle or clear the terminal, and a name holding a newline cannot forge an output line.
 * Everything else, including non-ASCII text, is kept. With `layout`, tabs and line feeds are kept (for text of our
 * own that spans lines or is laid out with tabs, as the original's output is). Applying it twice changes nothing more.
 */
export function displayText(text: string, layout = false): string {
  return text.replace(layout ? UNSAFE_BUT_LAYOUT : UNSAFE, escape);
}

// C0, DEL, C1; U+2028/2029 (line/paragraph separators); U+202A–202E and U+2066–2069 (bidi embeddings and isolates).
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const UNSAFE_BUT_LAYOUT = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const NAMED: Record<string, string> = { '\t': '\\t', '\n': '\\n', '\r': '\\r' };

function escape(c: string): string {
  const code = c.charCodeAt(0);
  return NAMED[c] ?? (code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`);
}
