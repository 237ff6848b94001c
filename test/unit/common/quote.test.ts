import { describe, expect, it } from 'vitest';
import { printableLine, quoteExcerpt } from '../../../src/common/quote.js';
import { loadConfig } from '../../../src/config/load.js';
import { parseTimelineHistory } from '../../../src/segment/history.js';

// What may appear in one line of PostgreSQL's log: no control, format or separator character but tab.
const ONE_PRINTABLE_LINE = /^(?:\t|[^\p{Cc}\p{Cf}\p{Zl}\p{Zp}])*$/u;

/** 438 deterministic junk bytes (a fixed LCG), starting with 0x01 and holding no newline. */
function garbageBytes(): Buffer {
  const out = Buffer.alloc(438);
  let x = 12345;
  for (let i = 0; i < out.length; i++) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    out[i] = (x >> 16) & 0xff;
  }
  out[0] = 0x01;
  return Buffer.from(out.map((b) => (b === 0x0a ? 0x0b : b)));
}

describe('quoteExcerpt', () => {
  it.each([
    ['plain', "'plain'"],
    ['', "''"],
    ["it's", "'it's'"],
    ['a\\b', "'a\\b'"],
    ['tab\there', "'tab\there'"],
    ['line\nbreak\r', "'line\\nbreak\\r'"],
    ['\u0000\u0001\u001b[31m\u007f', "'\\x00\\x01\\x1b[31m\\x7f'"],
    ['\u0085 next line', "'\\x85 next line'"],
    ['bidi \u202e override, separator \u2028', "'bidi \\u{202e} override, separator \\u{2028}'"],
    ['grüße ✓', "'grüße ✓'"],
  ])('%j -> %s', (input, expected) => {
    expect(quoteExcerpt(input)).toBe(expected);
  });

  it('cuts long text and says how long it was', () => {
    expect(quoteExcerpt('x'.repeat(100), 5)).toBe("'xxxxx'... (100 characters)");
    expect(quoteExcerpt('x'.repeat(60))).toBe(`'${'x'.repeat(60)}'`);
    expect(quoteExcerpt('x'.repeat(61))).toBe(`'${'x'.repeat(60)}'... (61 characters)`);
  });

  it('shows every byte of a buffer', () => {
    expect(quoteExcerpt(Buffer.from([0x41, 0x00, 0xff, 0x0a]))).toBe("'A\\x00ÿ\\n'");
  });
});

describe('printableLine', () => {
  it('escapes controls, leaves the rest of the message alone', () => {
    expect(printableLine("unable to x 'a\\b': \u0000\u001b[2J")).toBe("unable to x 'a\\b': \\x00\\x1b[2J");
  });
});

describe('messages that quote file content', () => {
  it('a garbage history file gives a short printable message (438 junk bytes)', () => {
    const garbage = garbageBytes();
    expect(garbage.filter((b) => b < 0x20).length).toBeGreaterThan(5);
    let message = '';
    try {
      parseTimelineHistory(garbage.toString('utf8'), 2);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(
      /^unable to parse timeline history '00000002.history': line 1: syntax error in '\\x01.*'\.\.\. \(\d+ characters\): expected a numeric timeline ID$/,
    );
    expect(message).toMatch(ONE_PRINTABLE_LINE);
    expect(message.length).toBeLessThan(400);
  });

  it('a config file line of binary junk is quoted and cut', () => {
    const problems: string[] = [];
    const junk = `\u0000\u0007${'z'.repeat(200)}`;
    try {
      loadConfig({ env: { WALVAULT_PUSH_PARALLEL: junk }, defaultConfigFile: '/nonexistent/walvault.conf' });
    } catch (err) {
      problems.push((err as Error).message);
    }
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain("expected an integer, got '\\x00\\x07zzz");
    expect(problems[0]).toContain('... (202 characters)');
    expect(problems[0]).toMatch(ONE_PRINTABLE_LINE);
  });
});
