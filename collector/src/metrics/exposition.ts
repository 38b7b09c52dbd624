/**
 * A writer of the Prometheus text exposition format (version 0.0.4) straight into bytes: the page is
 * one growable Buffer, families are written one after the other, and each sample line is assembled
 * from pieces encoded once (the metric name, label sets) plus a number formatted into the buffer.
 * A 10k-rig page is ~190k lines; building a string per line (then one page string) made garbage
 * collection ~78 % of the render, so the hot path allocates nothing per line (BENCHMARKS.md).
 */

export const EXPOSITION_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export type MetricType = 'gauge' | 'counter' | 'histogram';

/** Escapes a label value: backslash, double quote and line feed, as the format requires. */
export function escapeLabelValue(value: string): string {
  // Fast path: ids and names almost never need escaping, so avoid three regex passes per label.
  if (!/[\\"\n]/.test(value)) return value;
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** Escapes HELP text: only backslash and line feed are special there. */
export function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** Formats a sample value the way Prometheus parses it (Go ParseFloat plus `+Inf`/`-Inf`/`NaN`). */
export function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Number.POSITIVE_INFINITY) return '+Inf';
  if (value === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(value);
}

/** Renders `name="value",…` from pairs; the caller keeps the order stable. */
export function labelPairs(pairs: ReadonlyArray<readonly [string, string]>): string {
  let out = '';
  for (const [name, value] of pairs) {
    if (out !== '') out += ',';
    out += `${name}="${escapeLabelValue(value)}"`;
  }
  return out;
}

/** UTF-8 bytes of `text`: for names and label sets encoded once and written many times. */
export function encode(text: string): Uint8Array {
  return Buffer.from(text, 'utf8');
}

/** `labelPairs(pairs)` as UTF-8 bytes. */
export function encodeLabels(pairs: ReadonlyArray<readonly [string, string]>): Uint8Array {
  return encode(labelPairs(pairs));
}

/** The empty label set (`name value`, no braces), also "no extra labels". */
export const NO_LABELS: Uint8Array = new Uint8Array(0);

/** A metric family: name, type and HELP text, with its header lines and name encoded once. */
export class Family {
  /** `# HELP …` and `# TYPE …` lines, written before the family's first sample. */
  readonly header: Uint8Array;
  /** The metric name as bytes, written at the start of every sample line. */
  readonly nameBytes: Uint8Array;

  constructor(
    readonly name: string,
    readonly type: MetricType,
    readonly help: string,
  ) {
    this.header = encode(`# HELP ${name} ${escapeHelp(help)}\n# TYPE ${name} ${type}\n`);
    this.nameBytes = encode(name);
  }
}

const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const SPACE = 0x20;
const LINE_FEED = 0x0a;
const MINUS = 0x2d;
const DIGIT_ZERO = 0x30;
/**
 * Room for any formatted number: `String(n)` is at most 25 characters
 * (`-0.0000012345678901234567`, `-1.2345678901234567e-308`).
 */
const MAX_NUMBER_BYTES = 32;
/** 10^0 … 10^15: enough to count the digits of a safe integer (< 2^53 < 10^16). */
const POWERS_OF_TEN = Array.from({ length: 16 }, (_, i) => 10 ** i);

/**
 * Writes one exposition page into a growable Buffer. Reuse one writer across scrapes (`reset()`):
 * after the first page it has the capacity of the largest page, so a scrape allocates nothing for
 * the page itself. `bytes()` is a view of the writer's memory, not a copy: it is valid until the
 * next `reset()`, so whoever sends it must finish before the writer is reused.
 */
export class ExpositionWriter {
  private buf: Buffer;
  private pos = 0;
  /** The family being written (between `family()`'s start and end), its header offset and sample count. */
  private current: Family | undefined;
  private currentStart = 0;
  private currentSamples = 0;

  /** `initialBytes`: starting capacity; the writer grows it by half whenever a line does not fit. */
  constructor(initialBytes = 64 * 1024) {
    // allocUnsafe: bytes past `length` are never read (`bytes()` and `toString()` stop there).
    this.buf = Buffer.allocUnsafe(Math.max(1024, Math.ceil(initialBytes)));
  }

  /** Bytes written so far. */
  get length(): number {
    return this.pos;
  }

  /** Size of the underlying buffer. */
  get capacity(): number {
    return this.buf.length;
  }

  /** Empties the page, keeping the buffer (and any family left open by a failed render is dropped). */
  reset(): void {
    this.pos = 0;
    this.current = undefined;
  }

  /** The page so far: a view of the writer's buffer (no copy), valid until the next `reset()`. */
  bytes(): Buffer {
    return this.buf.subarray(0, this.pos);
  }

  /** The page so far as a string (tests and tools; the HTTP handler sends `bytes()`). */
  toString(): string {
    return this.buf.toString('utf8', 0, this.pos);
  }

  /**
   * Writes one family: its HELP and TYPE lines, then whatever samples `writeSamples` adds. A family
   * without samples leaves nothing on the page (its header is taken back), as the format expects.
   */
  family(family: Family, writeSamples: () => void): void {
    this.openFamily(family);
    writeSamples();
    this.closeFamily();
  }

  /**
   * `family()` in two calls, for a writer that pauses between samples (the sliced render): the
   * samples added between them belong to `family`.
   */
  openFamily(family: Family): void {
    if (this.current) throw new Error(`family ${family.name} started inside family ${this.current.name}`);
    this.current = family;
    this.currentStart = this.pos;
    this.currentSamples = 0;
    this.reserve(family.header.length);
    this.put(family.header);
  }

  /** Ends the family `openFamily()` started. */
  closeFamily(): void {
    if (this.currentSamples === 0) this.pos = this.currentStart;
    this.current = undefined;
  }

  /**
   * Adds a sample line to the current family: `name{labels extra} value`. `labels` and `extra` are
   * already escaped and encoded label pairs, written one after the other; `extra` starts with a comma
   * when `labels` is not empty. Both empty: no braces.
   */
  add(labels: Uint8Array, value: number, extra: Uint8Array = NO_LABELS): void {
    this.addSuffixed(NO_LABELS, labels, value, extra);
  }

  /** Like `add` for the lines of a histogram, whose names carry a suffix (`_bucket`, `_sum`, `_count`). */
  addSuffixed(suffix: Uint8Array, labels: Uint8Array, value: number, extra: Uint8Array = NO_LABELS): void {
    const family = this.current;
    if (!family) throw new Error('ExpositionWriter.add outside family()');
    const name = family.nameBytes;
    // One capacity check per line: name, braces, space, number and line feed all fit after it.
    this.reserve(name.length + suffix.length + labels.length + extra.length + MAX_NUMBER_BYTES + 4);
    this.put(name);
    if (suffix.length > 0) this.put(suffix);
    if (labels.length > 0 || extra.length > 0) {
      this.buf[this.pos++] = OPEN_BRACE;
      this.put(labels);
      this.put(extra);
      this.buf[this.pos++] = CLOSE_BRACE;
    }
    this.buf[this.pos++] = SPACE;
    this.putNumber(value);
    this.buf[this.pos++] = LINE_FEED;
    this.currentSamples++;
  }

  /** Appends text as UTF-8, as is (prom-client's part of the page). Not inside a family. */
  text(text: string): void {
    // A UTF-16 code unit is at most 3 bytes of UTF-8 (a surrogate pair: 4 bytes for 2 units).
    this.reserve(text.length * 3);
    this.pos += this.buf.write(text, this.pos, 'utf8');
  }

  /**
   * Makes room for `bytes` more bytes. Grows by half: the buffer is kept between scrapes, so its
   * slack is held for good (doubling would keep up to twice the page; 134 MB for an 83 MB page).
   */
  private reserve(bytes: number): void {
    const needed = this.pos + bytes;
    if (needed <= this.buf.length) return;
    const size = Math.max(needed, Math.ceil(this.buf.length * 1.5));
    const grown = Buffer.allocUnsafe(size);
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }

  /** Copies bytes in; the caller has reserved room. */
  private put(bytes: Uint8Array): void {
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  /** Writes `formatValue(value)`; the caller has reserved `MAX_NUMBER_BYTES`. */
  private putNumber(value: number): void {
    // Most samples are integers (counters, states, rpm, watts): write their digits without making a
    // string. Only safe integers: their shortest round-trip form (what String() prints) is exactly
    // their digits; beyond 2^53, and for fractions, NaN and infinities, formatValue decides.
    if (Number.isSafeInteger(value)) {
      this.putInteger(value);
      return;
    }
    const text = formatValue(value);
    // Numbers format as ASCII, one byte per character.
    for (let i = 0; i < text.length; i++) this.buf[this.pos++] = text.charCodeAt(i);
  }

  private putInteger(value: number): void {
    let n = value;
    // -0 is not < 0, so it prints as "0", as String(-0) does.
    if (n < 0) {
      this.buf[this.pos++] = MINUS;
      n = -n;
    }
    let digits = 1;
    while (digits < POWERS_OF_TEN.length && n >= (POWERS_OF_TEN[digits] ?? 0)) digits++;
    let at = this.pos + digits;
    this.pos = at;
    // Exact for safe integers: `n % 10` is exact and `(n - digit) / 10` divides a multiple of ten.
    do {
      const digit = n % 10;
      this.buf[--at] = DIGIT_ZERO + digit;
      n = (n - digit) / 10;
    } while (n > 0);
  }
}

/**
 * A cumulative histogram as the exposition wants it. `upperBoundsSeconds` excludes `+Inf`;
 * `cumulativeCounts[i]` counts observations ≤ `upperBoundsSeconds[i]`.
 */
export interface HistogramSnapshot {
  upperBoundsSeconds: readonly number[];
  cumulativeCounts: readonly number[];
  sumSeconds: number;
  count: number;
}

const BUCKET = encode('_bucket');
const SUM = encode('_sum');
const COUNT = encode('_count');

/**
 * Writes the `_bucket` (with `le`), `_sum` and `_count` lines of one histogram series into the
 * current family of `out`; `labels` are the series' other labels (`NO_LABELS` for none).
 */
export function addHistogram(out: ExpositionWriter, labels: Uint8Array, h: HistogramSnapshot): void {
  const sep = labels.length === 0 ? '' : ',';
  for (let i = 0; i < h.upperBoundsSeconds.length; i++) {
    const le = encode(`${sep}le="${formatValue(h.upperBoundsSeconds[i] ?? 0)}"`);
    out.addSuffixed(BUCKET, labels, h.cumulativeCounts[i] ?? 0, le);
  }
  out.addSuffixed(BUCKET, labels, h.count, encode(`${sep}le="+Inf"`));
  out.addSuffixed(SUM, labels, h.sumSeconds);
  out.addSuffixed(COUNT, labels, h.count);
}
