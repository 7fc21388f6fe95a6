import { describe, expect, it } from 'vitest';
import { displayText } from '../../src/format/display.js';

describe('displayText', () => {
  it('shows control characters as escapes', () => {
    expect(displayText('a\u001b]0;pwned\u0007b')).toBe('a\\x1b]0;pwned\\x07b');
    expect(displayText('\u0000\u0001\u001f\u007f')).toBe('\\x00\\x01\\x1f\\x7f');
    expect(displayText('\u0080\u009b31m\u009f')).toBe('\\x80\\x9b31m\\x9f'); // C1: U+009B is CSI
    expect(displayText('tab\tnew\nline\rret')).toBe('tab\\tnew\\nline\\rret');
  });

  it('shows line separators and bidirectional controls as escapes', () => {
    expect(displayText('a\u2028b\u2029c')).toBe('a\\u2028b\\u2029c');
    expect(displayText('x\u202ey\u2066z\u2069')).toBe('x\\u202ey\\u2066z\\u2069');
  });

  it('keeps everything else, non-ASCII included', () => {
    const text = "v1..2.img é ✓ \u{1F600} 名前 a\\b '\"<>&";
    expect(displayText(text)).toBe(text);
  });

  it('with layout, keeps tabs and line feeds only', () => {
    expect(displayText('one\n\ttwo\u001b[2J\r', true)).toBe('one\n\ttwo\\x1b[2J\\r');
  });

  it('changes nothing more when applied twice', () => {
    for (const t of ['a\u001bb', '\u009b\n\u2028', 'plain']) expect(displayText(displayText(t))).toBe(displayText(t));
  });

  it('leaves no character a terminal acts on, over every code point below U+3000', () => {
    let all = '';
    for (let c = 0; c < 0x3000; c++) all += String.fromCharCode(c);
    expect(displayText(all)).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/);
  });
});
