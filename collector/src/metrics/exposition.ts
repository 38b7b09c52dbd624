/**
 * A minimal writer of the Prometheus text exposition format (version 0.0.4): each family appends
 * its sample lines to one string, and the page concatenates the families once. No per-series
 * objects, so a large fleet renders without a metric object per series (README "Why not prom-client").
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

/**
 * One metric family: HELP, TYPE and its sample lines, in the order they were added. Lines are
 * appended to one string (V8 keeps it as a rope until the page is flattened once), which allocates
 * far less than an array of line strings at 100k+ series.
 */
export class Family {
  private body = '';
  private count = 0;

  constructor(
    readonly name: string,
    readonly type: MetricType,
    readonly help: string,
  ) {}

  /** Number of sample lines added so far. */
  get size(): number {
    return this.count;
  }

  /** Adds a sample; `labels` is an already-escaped `a="b",c="d"` string ('' for none). */
  add(labels: string, value: number, suffix = ''): void {
    this.body +=
      labels === ''
        ? `${this.name}${suffix} ${formatValue(value)}\n`
        : `${this.name}${suffix}{${labels}} ${formatValue(value)}\n`;
    this.count++;
  }

  /** The sample lines, for tests. */
  get lines(): string[] {
    return this.body === '' ? [] : this.body.slice(0, -1).split('\n');
  }

  /** The family's text (HELP, TYPE, samples, each line ending in a newline); '' without samples. */
  text(): string {
    if (this.count === 0) return '';
    return `# HELP ${this.name} ${escapeHelp(this.help)}\n# TYPE ${this.name} ${this.type}\n${this.body}`;
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

/** Writes `_bucket` (with `le`), `_sum` and `_count` lines of one histogram series. */
export function addHistogram(family: Family, labels: string, h: HistogramSnapshot): void {
  const sep = labels === '' ? '' : `${labels},`;
  for (let i = 0; i < h.upperBoundsSeconds.length; i++) {
    family.add(`${sep}le="${formatValue(h.upperBoundsSeconds[i] ?? 0)}"`, h.cumulativeCounts[i] ?? 0, '_bucket');
  }
  family.add(`${sep}le="+Inf"`, h.count, '_bucket');
  family.add(labels, h.sumSeconds, '_sum');
  family.add(labels, h.count, '_count');
}
