/**
 * JSON.parse for large reports, in slices that each stay a regular V8 string.
 *
 * V8 puts a string over ~128 KB in its large-object space, on pages it maps fresh from the kernel
 * for every such string and unmaps once it dies: ~120 page faults for a 550 KB report, which made
 * decoding a 500-rig report cost ~1.7× per sample what a 100-rig one does (BENCHMARKS.md, finding
 * 22). A report is almost all one array, `rigs`, so a large one is parsed as its rig list cut into
 * slices of a few tens of KB plus one document holding the head, the last slice and the tail.
 *
 * The result is exactly `JSON.parse` of the whole text, or the whole text is parsed instead:
 * - A cut is made only before a `{"rig":"` that follows `},`. A quote inside a JSON string is
 *   always escaped, so a cut that lands inside a string leaves that string unterminated in its slice,
 *   and a cut between nested objects leaves a bracket unmatched: the slice fails to parse. Every
 *   slice must parse as a list of values, and the rest as a document, or the whole text is parsed,
 *   so malformed input gets `JSON.parse`'s own error.
 * - If every piece parses, the whole text is the document with the slices inserted at the front of
 *   its `rigs` array, which is exactly what the result holds.
 * - `"rigs":[` must open the top-level object's member (checked by scanning the few bytes before
 *   it), and no later top-level `rigs` may override it: a last piece that holds `"rigs"` or any
 *   `\u` escape (which could spell it) is parsed whole.
 */

/**
 * V8's regular objects end at 128 KiB (`kMaxRegularHeapObjectSize`), a string's header included:
 * measured here, decode per sample steps from ~5 to ~10 µs between 127,890- and 131,208-byte
 * reports. Below this the whole text stays a regular string, and slicing would only add copies.
 */
export const SLICE_ABOVE_BYTES = 128 * 1024 - 64;
/** Bytes per slice before its cut is looked for; a slice ends at the next rig after that. */
const SLICE_TARGET_BYTES = 48 * 1024;
/** The head (`v`, `boot_id`, `seq`, `ts`, `interval_ms`) is ~100 bytes; anything longer is not ours to slice. */
const MAX_HEAD_BYTES = 4096;

const RIGS_MEMBER = Buffer.from('"rigs":[');
const RIG_START = Buffer.from('},{"rig":"');
const RIGS_KEY = Buffer.from('"rigs"');
const UNICODE_ESCAPE = Buffer.from('\\u');

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * Parses a report's JSON text from its bytes, as `JSON.parse(bytes.toString('utf8'))` would, with
 * the same result or the same SyntaxError; large reports are parsed in slices (see the file comment).
 */
export function parseReportJson(bytes: Buffer): unknown {
  if (bytes.byteLength > SLICE_ABOVE_BYTES) {
    const sliced = parseSliced(bytes);
    if (sliced !== undefined) return sliced;
  }
  return JSON.parse(bytes.toString('utf8'));
}

/** The sliced parse, or undefined when the text does not have the shape it needs (then parse whole). */
function parseSliced(bytes: Buffer): unknown {
  const member = bytes.indexOf(RIGS_MEMBER);
  if (member < 0 || member > MAX_HEAD_BYTES || !isTopLevel(bytes, member)) return undefined;
  const arrayStart = member + RIGS_MEMBER.byteLength;
  const slices: unknown[][] = [];
  let from = arrayStart;
  try {
    for (;;) {
      const cut = bytes.indexOf(RIG_START, from + SLICE_TARGET_BYTES);
      if (cut < 0) break;
      // `[` … `}` `]`: the rigs from `from` up to and including the `}` before the cut.
      const slice: unknown = JSON.parse(`[${bytes.toString('utf8', from, cut + 1)}]`);
      if (!Array.isArray(slice)) return undefined;
      slices.push(slice);
      from = cut + 2; // past `},`: the next slice starts at `{"rig":"`
    }
    if (slices.length === 0) return undefined;
    if (bytes.indexOf(RIGS_KEY, from) >= 0 || bytes.indexOf(UNICODE_ESCAPE, from) >= 0) return undefined;
    const doc: unknown = JSON.parse(bytes.toString('utf8', 0, arrayStart) + bytes.toString('utf8', from));
    if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return undefined;
    const rest = (doc as { rigs?: unknown }).rigs;
    if (!Array.isArray(rest)) return undefined;
    slices.push(rest);
    (doc as { rigs: unknown[] }).rigs = ([] as unknown[]).concat(...slices);
    return doc;
  } catch {
    // A piece that does not parse: the whole text decides (and gives JSON.parse's own message).
    return undefined;
  }
}

/**
 * Whether the key starting at `at` is a member of the top-level object: outside any string, one
 * level deep. Scans only the bytes before it (the short head of a report).
 */
function isTopLevel(bytes: Buffer, at: number): boolean {
  let depth = 0;
  for (let i = 0; i < at; i++) {
    const c = bytes[i];
    if (c === QUOTE) {
      // skip the string, escapes included; one that runs past `at` contains it
      for (i++; i < at && bytes[i] !== QUOTE; i++) if (bytes[i] === BACKSLASH) i++;
      if (i >= at) return false;
    } else if (c === 0x7b || c === 0x5b) depth++;
    else if (c === 0x7d || c === 0x5d) depth--;
  }
  return depth === 1;
}
