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
  const trimmed = raw.replace(/[\0\s]+$/u, '').replace(/^[\0\s]+/u, '');
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

const VALUE_START = /["{[0-9tfn-]/;

/**
 * One pass over the text outside strings: inserts a comma wherever a value ends and another value
 * begins with only whitespace between, and replaces non-finite number literals with null.
 */
function repair(input: string): string {
  let out = '';
  let inString = false;
  let escaped = false;
  // True right after a complete value (string, number, literal, } or ]).
  let afterValue = false;
  for (let i = 0; i < input.length; i++) {
    const ch = input[i] as string;
    if (inString) {
      if (escaped) {
        escaped = false;
        out += ch;
      } else if (ch === '\\') {
        escaped = true;
        out += ch;
      } else if (ch === '"') {
        inString = false;
        afterValue = true;
        out += ch;
      } else if (ch.charCodeAt(0) < 0x20) {
        out += `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`;
      } else {
        out += ch;
      }
      continue;
    }
    if (/\s/.test(ch) || ch === '\0') {
      out += ch === '\0' ? '' : ch;
      continue;
    }
    if (afterValue && VALUE_START.test(ch)) out += ',';
    if (ch === '"') {
      inString = true;
      afterValue = false;
      out += ch;
      continue;
    }
    if (ch === '}' || ch === ']') {
      afterValue = true;
      out += ch;
      continue;
    }
    if (ch === ',' || ch === ':' || ch === '{' || ch === '[') {
      afterValue = false;
      out += ch;
      continue;
    }
    // A bare token: number or literal.
    const m = /^-?[A-Za-z0-9.+]+/.exec(input.slice(i, i + 40));
    if (m) {
      const token = m[0];
      const lower = token.toLowerCase();
      out += /^-?(nan|inf|infinity)$/.test(lower) ? 'null' : token;
      i += token.length - 1;
      afterValue = true;
      continue;
    }
    out += ch;
    afterValue = false;
  }
  return out;
}
