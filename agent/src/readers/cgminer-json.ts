/**
 * Lenient JSON for cgminer-family replies. Real firmware sends text that is *almost* JSON; we
 * repair only what has one unambiguous reading and refuse the rest:
 *
 * - trailing NUL bytes and whitespace (the API's end-of-reply marker);
 * - a missing comma between two values (`}{` between multi-command parts or STATS entries on
 *   bmminer, `"temp8":60 "temp2_6":72` in old bmminer stats);
 * - bare `nan`, `-nan`, `inf`, `-inf` numbers (printf of a float), read as null (= absent);
 * - raw control characters inside strings (escaped).
 *
 * Keys that repeat in one object keep the last value (what `JSON.parse` does). In the replies we
 * know of, repeats carry the same value, so which one wins does not change a number; we keep the
 * standard behaviour rather than inventing a merge rule.
 *
 * Pure: no I/O.
 */

export type LenientParse = { ok: true; value: unknown; repaired: boolean } | { ok: false; message: string };

/** Parses a reply, repairing the known firmware quirks. */
export function parseLenient(raw: string): LenientParse {
  // NULs and whitespace around the reply (the end-of-reply marker), without a regex pass over it.
  let start = 0;
  let end = raw.length;
  while (end > start && isPad(raw.charCodeAt(end - 1))) end--;
  while (start < end && isPad(raw.charCodeAt(start))) start++;
  const trimmed = start === 0 && end === raw.length ? raw : raw.slice(start, end);
  if (trimmed === '') return { ok: false, message: 'Rig sent an empty reply' };
  try {
    return { ok: true, value: JSON.parse(trimmed), repaired: false };
  } catch {
    // fall through to the repair pass
  }
  const repaired = repair(trimmed);
  try {
    return { ok: true, value: JSON.parse(repaired), repaired: true };
  } catch (err) {
    const preview = JSON.stringify(trimmed.slice(0, 60));
    return {
      ok: false,
      message: `Rig reply is not JSON even after repair (${(err as Error).message}); it starts ${preview}`,
    };
  }
}

const CLEAN_STRING_SRC = String.raw`"[^"\\\u0000-\u001f]*(?:\\[^][^"\\\u0000-\u001f]*)*"`;

/** A string without raw control characters, opening quote to closing quote: copied as is. */
const CLEAN_STRING = new RegExp(CLEAN_STRING_SRC, 'y');

/**
 * A stretch that needs no repair: separators, whitespace, and values (clean strings, finite bare
 * tokens, closing brackets) each followed by a separator or the end. The repair skips such
 * stretches in the regex engine and walks only the few tokens around a quirk in JavaScript: the
 * agent runs without TurboFan, where a loop over every character cost ~200 µs per 3.5 kB S19
 * reply, 14 times the JSON.parse. Bounded per match so the regex engine's backtrack stack stays
 * small on a large reply; the loop simply applies it again.
 */
const CLEAN_RUN = new RegExp(
  String.raw`(?:[\s,:{[]|(?:${CLEAN_STRING_SRC}|(?!-?(?:[nN][aA][nN]|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?)(?![A-Za-z0-9.+]))-?[A-Za-z0-9.+]+(?![A-Za-z0-9.+])|[}\]])(?=\s*(?:[,:}\]]|$))){0,2000}`,
  'y',
);

/**
 * One pass over the text outside strings: inserts a comma wherever a value ends and another value
 * begins with only whitespace between, and replaces non-finite number literals with null. What
 * needs no repair is copied in slices, not character by character.
 */
function repair(input: string): string {
  const out: string[] = [];
  // input[0, copied) is already in `out` (or dropped); input[copied, i) is waiting to be copied.
  let copied = 0;
  // True right after a complete value (string, number, literal, } or ]).
  let afterValue = false;
  let i = 0;
  const n = input.length;
  while (i < n) {
    // Right after a value the next token decides whether a comma is missing: that one is walked.
    if (!afterValue) {
      CLEAN_RUN.lastIndex = i;
      CLEAN_RUN.test(input);
      if (CLEAN_RUN.lastIndex > i) {
        const end = CLEAN_RUN.lastIndex;
        afterValue = endsValue(input, i, end) ?? afterValue;
        i = end;
        continue;
      }
    }
    // A quirk, or a token next to one: one token at a time.
    const c = input.charCodeAt(i);
    if (c === 0) {
      out.push(input.slice(copied, i));
      copied = ++i;
      continue;
    }
    if (isSpace(c)) {
      i++;
      continue;
    }
    if (afterValue && startsValue(c)) {
      out.push(input.slice(copied, i), ',');
      copied = i;
    }
    if (c === QUOTE) {
      CLEAN_STRING.lastIndex = i;
      if (CLEAN_STRING.test(input)) {
        i = CLEAN_STRING.lastIndex;
      } else {
        out.push(input.slice(copied, i));
        i = copyRawString(input, i, out);
        copied = i;
      }
      afterValue = true;
      continue;
    }
    if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      afterValue = true;
      i++;
      continue;
    }
    if (c === COMMA || c === COLON || c === OPEN_BRACE || c === OPEN_BRACKET) {
      afterValue = false;
      i++;
      continue;
    }
    // A bare token: number or literal.
    BARE_TOKEN.lastIndex = i;
    if (BARE_TOKEN.test(input)) {
      const end = BARE_TOKEN.lastIndex;
      if (end - i <= 9 && NON_FINITE.test(input.slice(i, end))) {
        out.push(input.slice(copied, i), 'null');
        copied = end;
      }
      i = end;
      afterValue = true;
      continue;
    }
    afterValue = false;
    i++;
  }
  out.push(input.slice(copied));
  return out.join('');
}

/**
 * Copies the string starting at `start` (its opening quote) into `out` with its raw control
 * characters escaped; returns the index after its closing quote (or the end of an unterminated one).
 */
function copyRawString(input: string, start: number, out: string[]): number {
  let escaped = false;
  let from = start;
  for (let i = start + 1; i < input.length; i++) {
    const c = input.charCodeAt(i);
    if (escaped) escaped = false;
    else if (c === BACKSLASH) escaped = true;
    else if (c === QUOTE) {
      out.push(input.slice(from, i + 1));
      return i + 1;
    } else if (c < 0x20) {
      out.push(input.slice(from, i), `\\u${c.toString(16).padStart(4, '0')}`);
      from = i + 1;
    }
  }
  out.push(input.slice(from));
  return input.length;
}

/** A bare number or literal (`test` with `lastIndex` finds its end without a match array). */
const BARE_TOKEN = /-?[A-Za-z0-9.+]+/y;
const NON_FINITE = /^-?(?:nan|inf|infinity)$/i;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const MINUS = 0x2d;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

/** NUL or whitespace. */
function isPad(c: number): boolean {
  return c === 0 || isSpace(c);
}

/** `/\s/` (JavaScript's whitespace), outside strings. */
function isSpace(c: number): boolean {
  if (c <= 0x20) return c === 0x20 || (c >= 0x09 && c <= 0x0d);
  return (
    c === 0xa0 ||
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0x202f ||
    c === 0x205f ||
    c === 0x3000 ||
    c === 0xfeff
  );
}

/** A character that can begin a value after one that just ended: `"`, `{`, `[`, a digit, t, f, n, `-`. */
function startsValue(c: number): boolean {
  return (
    c === QUOTE ||
    c === OPEN_BRACE ||
    c === OPEN_BRACKET ||
    (c >= 0x30 && c <= 0x39) ||
    c === 0x74 ||
    c === 0x66 ||
    c === 0x6e ||
    c === MINUS
  );
}

/**
 * Whether input[from, to) ends with a complete value (`"`, `}`, `]` or a bare token's last
 * character before trailing whitespace); undefined when it is whitespace only.
 */
function endsValue(input: string, from: number, to: number): boolean | undefined {
  for (let i = to - 1; i >= from; i--) {
    const c = input.charCodeAt(i);
    if (isSpace(c)) continue;
    return !(c === COMMA || c === COLON || c === OPEN_BRACE || c === OPEN_BRACKET);
  }
  return undefined;
}
