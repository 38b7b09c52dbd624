import { describe, expect, it } from 'vitest';
import { seededRandom } from '../sim/random.js';
import { parseLenient } from './cgminer-json.js';

describe('parseLenient', () => {
  it('strips the NUL terminator without calling it a repair', () => {
    expect(parseLenient('{"a":1}\0')).toEqual({ ok: true, value: { a: 1 }, repaired: false });
  });
  it('inserts commas between values: }{ and missing commas', () => {
    expect(parseLenient('{"S":[{"a":1}{"b":2}]}')).toEqual({
      ok: true,
      value: { S: [{ a: 1 }, { b: 2 }] },
      repaired: true,
    });
    expect(parseLenient('{"t":60 "u":"x" "v":true}')).toMatchObject({ value: { t: 60, u: 'x', v: true } });
  });
  it('reads nan/inf as null and escapes raw control characters', () => {
    expect(parseLenient('{"a":nan,"b":-inf,"c":"x\ty"}')).toMatchObject({ value: { a: null, b: null, c: 'x\ty' } });
  });
  it('does not touch string contents', () => {
    expect(parseLenient('{"a":"}{ nan" "b":1}')).toMatchObject({ value: { a: '}{ nan', b: 1 } });
  });
  it('keeps the last of repeated keys (JSON.parse semantics)', () => {
    expect(parseLenient('{"Uptime":1,"Uptime":2}')).toMatchObject({ value: { Uptime: 2 } });
  });
  it('refuses what it cannot repair', () => {
    expect(parseLenient('{"a":1').ok).toBe(false);
    expect(parseLenient('').ok).toBe(false);
    expect(parseLenient('\0').ok).toBe(false);
    expect(parseLenient('<html>').ok).toBe(false);
  });
  it('repairs a reply of megabytes with quirks far apart', () => {
    const entries = Array.from(
      { length: 40_000 },
      (_, n) => `{"STATS":${n},"Elapsed":"x\\"y","GHS 5s":12.5,"ok":true}`,
    );
    const text = `{"STATS":[${entries.join(',')}{"STATS":-1,"temp":nan}]}\0`; // ~2.4 MB, the quirks at the end
    const got = parseLenient(text);
    expect(got.ok && got.repaired).toBe(true);
    const stats = (got as { value: { STATS: Array<Record<string, unknown>> } }).value.STATS;
    expect(stats).toHaveLength(40_001);
    expect(stats[40_000]).toEqual({ STATS: -1, temp: null });
    expect(stats[39_999]?.['Elapsed']).toBe('x"y');
  });
  it('repairs exactly as the character-by-character pass it replaced, on random quirky replies', () => {
    const rand = seededRandom(7);
    const outcomes = { valid: 0, repaired: 0, refused: 0 };
    for (let n = 0; n < 3000; n++) {
      const text = quirkyReply(rand);
      const got = parseLenient(text);
      expect(got, JSON.stringify(text)).toEqual(referenceParse(text));
      outcomes[!got.ok ? 'refused' : got.repaired ? 'repaired' : 'valid']++;
    }
    // The generator exercises every outcome, the repair most.
    expect(outcomes.repaired).toBeGreaterThan(500);
    expect(outcomes.refused).toBeGreaterThan(100);
    expect(outcomes.valid).toBeGreaterThan(100);
  });
});

/** A cgminer-like reply with the firmware quirks parseLenient repairs, and some it cannot. */
function quirkyReply(rand: () => number): string {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
  const sep = () => pick([',', ',', ',', ' ', '', '\n', '\t ', '\0', ', ', '\u00a0']);
  const str = () =>
    `"${Array.from({ length: Math.floor(rand() * 6) }, () =>
      pick(['a', 'Z', ' ', '}{', 'nan', '\\"', '\\\\', '\t', '\u0001', '\u001f', 'é', '-', ':', ',', '\\u0041']),
    ).join('')}"`;
  const value = (depth: number): string => {
    const r = rand();
    if (depth > 3 || r < 0.45)
      return pick([
        () => String(Math.floor(rand() * 1e6) / 100),
        () => pick(['nan', '-nan', 'inf', '-inf', 'NaN', 'Infinity', '-', 'true', 'false', 'null', '1e5', 'x']),
        str,
      ])();
    if (r < 0.75)
      return `{${Array.from({ length: Math.floor(rand() * 4) }, () => `${str()}:${value(depth + 1)}`).join(sep())}}`;
    return `[${Array.from({ length: Math.floor(rand() * 4) }, () => value(depth + 1)).join(sep())}]`;
  };
  const tail = pick(['\0', '', ' \0\0', '\n']);
  const head = pick(['', '', ' ', '\0\n', '\u00a0']);
  return head + (rand() < 0.05 ? value(0).slice(0, -1) : value(0)) + tail; // some truncated
}

/** The repair as it was first written (one character at a time), kept as the test's oracle. */
function referenceParse(raw: string): ReturnType<typeof parseLenient> {
  const trimmed = raw.replace(/[\0\s]+$/u, '').replace(/^[\0\s]+/u, '');
  if (trimmed === '') return { ok: false, message: 'Rig sent an empty reply' };
  try {
    return { ok: true, value: JSON.parse(trimmed), repaired: false };
  } catch {}
  let out = '';
  let inString = false;
  let escaped = false;
  let afterValue = false;
  for (let i = 0; i < trimmed.length; i++) {
    const ch = trimmed[i] as string;
    if (inString) {
      if (escaped) escaped = false;
      else if (ch === '\\') escaped = true;
      else if (ch === '"') {
        inString = false;
        afterValue = true;
      } else if (ch.charCodeAt(0) < 0x20) {
        out += `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`;
        continue;
      }
      out += ch;
      continue;
    }
    if (/\s/.test(ch) || ch === '\0') {
      out += ch === '\0' ? '' : ch;
      continue;
    }
    if (afterValue && /["{[0-9tfn-]/.test(ch)) out += ',';
    if (ch === '"') inString = true;
    if ('"}],:{['.includes(ch)) {
      afterValue = ch === '"' ? false : ch === '}' || ch === ']';
      out += ch;
      continue;
    }
    const m = /^-?[A-Za-z0-9.+]+/.exec(trimmed.slice(i, i + 40));
    if (m) {
      out += /^-?(nan|inf|infinity)$/.test(m[0].toLowerCase()) ? 'null' : m[0];
      i += m[0].length - 1;
      afterValue = true;
      continue;
    }
    out += ch;
    afterValue = false;
  }
  try {
    return { ok: true, value: JSON.parse(out), repaired: true };
  } catch (err) {
    const preview = JSON.stringify(trimmed.slice(0, 60));
    return {
      ok: false,
      message: `Rig reply is not JSON even after repair (${(err as Error).message}); it starts ${preview}`,
    };
  }
}
