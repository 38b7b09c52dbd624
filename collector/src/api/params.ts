/**
 * Validation of API inputs: names and ids against the protocol's patterns, time ranges as Unix ms
 * or ISO-8601. Anything else (traversal, SQL-looking text, absurd ranges) is a 400 with a message.
 */
import { isValidId, isValidName } from '@hashwatch/protocol';
import { HttpError } from '../http/server.js';

function show(value: string): string {
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
}

/** A site or host name from a path or query; throws 400 unless it matches the protocol's pattern. */
export function nameParam(value: string | undefined | null, what: 'site' | 'host'): string {
  if (value === undefined || value === null || value === '') {
    throw new HttpError(400, 'HW_ERR_BAD_PARAM', `Missing ${what} name`);
  }
  if (!isValidName(value)) {
    throw new HttpError(400, 'HW_ERR_BAD_PARAM', `Invalid ${what} name ${show(value)}: use [a-z0-9][a-z0-9_-]{0,62}`);
  }
  return value;
}

export function rigParam(value: string | undefined): string {
  if (value === undefined || !isValidId(value)) {
    throw new HttpError(
      400,
      'HW_ERR_BAD_PARAM',
      `Invalid rig id ${show(value ?? '')}: use [A-Za-z0-9][A-Za-z0-9_.:-]{0,63}`,
    );
  }
  return value;
}

/** Optional name: absent or empty means "no filter". */
export function optionalName(value: string | null, what: 'site' | 'host'): string | undefined {
  return value === null || value === '' ? undefined : nameParam(value, what);
}

const ISO_RE = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

/** Parses a time as Unix ms (integer) or ISO-8601. */
export function timeParam(value: string, what: string): number {
  if (/^\d{1,16}$/.test(value)) return Number(value);
  if (ISO_RE.test(value)) {
    const ms = Date.parse(value);
    if (Number.isFinite(ms)) return ms;
  }
  throw new HttpError(400, 'HW_ERR_BAD_RANGE', `${what} must be Unix milliseconds or ISO-8601, got ${show(value)}`);
}

export interface Range {
  fromMs: number;
  toMs: number;
}

/**
 * Reads `from`/`to` (defaults: the last `defaultSpanMs` before now); requires from < to and a span
 * of at most `maxSpanMs`.
 */
export function rangeParams(query: URLSearchParams, nowMs: number, defaultSpanMs: number, maxSpanMs: number): Range {
  const toRaw = query.get('to');
  const fromRaw = query.get('from');
  const toMs = toRaw === null || toRaw === '' ? nowMs : timeParam(toRaw, 'to');
  const fromMs = fromRaw === null || fromRaw === '' ? toMs - defaultSpanMs : timeParam(fromRaw, 'from');
  if (fromMs >= toMs) throw new HttpError(400, 'HW_ERR_BAD_RANGE', 'from must be earlier than to');
  if (toMs - fromMs > maxSpanMs) {
    throw new HttpError(
      400,
      'HW_ERR_BAD_RANGE',
      `The range spans more than ${Math.round(maxSpanMs / 86_400_000)} days`,
    );
  }
  return { fromMs, toMs };
}

/** `step` in ms, or with a unit (`30s`, `5m`, `1h`, `1d`); absent = raw points. */
export function stepParam(value: string | null): number | undefined {
  if (value === null || value === '') return undefined;
  const m = /^(\d{1,10})(ms|s|m|h|d)?$/.exec(value);
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
  const ms = m ? Number(m[1]) * (units[m[2] ?? 'ms'] ?? 1) : Number.NaN;
  if (!Number.isFinite(ms) || ms < 1000 || ms > 30 * 86_400_000) {
    throw new HttpError(
      400,
      'HW_ERR_BAD_PARAM',
      `step must be between 1s and 30d (e.g. 60000, 5m, 1h), got ${show(value)}`,
    );
  }
  return ms;
}

export function boolParam(value: string | null, what: string): boolean {
  if (value === null || value === '' || value === 'false' || value === '0') return false;
  if (value === 'true' || value === '1') return true;
  throw new HttpError(400, 'HW_ERR_BAD_PARAM', `${what} must be true or false, got ${show(value)}`);
}
