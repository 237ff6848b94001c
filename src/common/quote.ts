/**
 * Text we do not control (a line of a file, a name read from an object header, a setting's value)
 * as it may appear in a message. Error lines end up in PostgreSQL's log and on terminals, where raw
 * control bytes corrupt the line and a whole garbage file drowns the one fact that matters.
 */

/** Characters of the excerpt kept before it is cut. */
const EXCERPT_CHARS = 60;

/**
 * `'text'` with control and other non-printable characters escaped (`\n`, `\x00`, `\u{2028}`; a tab
 * stays, it cannot break a line), cut after `max` characters with the full length said:
 * `'abc'... (438 characters)`. Printable text reads exactly as before, quotes and backslashes too.
 */
export function quoteExcerpt(text: string | Buffer, max: number = EXCERPT_CHARS): string {
  // Bytes of unknown encoding: latin1 maps each byte to one character, so every byte is shown.
  const s = typeof text === 'string' ? text : text.toString('latin1');
  const chars = Array.from(s);
  const shown = chars.slice(0, max).map(escapeChar).join('');
  return chars.length > max ? `'${shown}'... (${chars.length} characters)` : `'${shown}'`;
}

/** Escapes control and other non-printable characters in a message line (newlines included). */
export function printableLine(text: string): string {
  return Array.from(text, escapeChar).join('');
}

function escapeChar(c: string): string {
  switch (c) {
    case '\n':
      return '\\n';
    case '\r':
      return '\\r';
  }
  if (isPrintable(c)) return c;
  const cp = c.codePointAt(0)!;
  return cp < 0x100 ? `\\x${hex(cp, 2)}` : `\\u{${cp.toString(16)}}`;
}

// Letters, marks, numbers, punctuation, symbols, space and tab; not other controls, format
// characters (bidi overrides), line/paragraph separators, unassigned or private-use code points.
const PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S} \t]$/u;

function isPrintable(c: string): boolean {
  return PRINTABLE.test(c);
}

function hex(n: number, width: number): string {
  return n.toString(16).padStart(width, '0');
}
