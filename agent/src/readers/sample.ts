/**
 * Building blocks every reader shares: turning firmware values (numbers sent as strings, absent
 * sensors sent as 0, unit-carrying keys) into checked SI values, and the last guard that makes sure
 * no sample leaves a reader unless the protocol schema accepts it.
 */
import { LIMITS, type PollError, type PollErrorKind, type RigSample, validate } from '@hashwatch/protocol';

/** Flags name what was dropped; the protocol allows 16 per sample. */
const MAX_FLAGS = 16;

/** Collects flags (deduplicated, bounded) while a reader parses one reply. */
export class Flags {
  private readonly set = new Set<string>();
  add(flag: string): void {
    if (this.set.size < MAX_FLAGS) this.set.add(flag);
  }
  has(flag: string): boolean {
    return this.set.has(flag);
  }
  list(): string[] {
    return [...this.set];
  }
}

/**
 * Reads a firmware number: JSON numbers and numeric strings (`"156.0000"`, `" 72 "`) are accepted;
 * anything else is `undefined` and, when a value was present but unreadable, flags `field_invalid`.
 */
export function num(value: unknown, flags?: Flags): number | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value === 'number') return Number.isFinite(value) ? value : flagInvalid(flags);
  if (typeof value === 'string') {
    const trimmed = value.trim();
    if (trimmed === '' || !/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(trimmed)) return flagInvalid(flags);
    const n = Number(trimmed);
    return Number.isFinite(n) ? n : flagInvalid(flags);
  }
  return flagInvalid(flags);
}

function flagInvalid(flags: Flags | undefined): undefined {
  flags?.add('field_invalid');
  return undefined;
}

/** A string field, or undefined when absent or not a string. */
export function str(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** Multipliers from a firmware's hashrate unit to H/s. */
const UNIT_HS: Record<string, number> = { H: 1, K: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15 };

/** `"GH/s"`, `"MH/s"`, `"TH/s"`, … → multiplier to H/s; undefined for an unknown unit. */
export function unitToHs(unit: string | undefined): number | undefined {
  if (!unit) return undefined;
  const m = /^\s*([HKMGTP])H\/s\s*$/i.exec(unit);
  return m ? UNIT_HS[(m[1] as string).toUpperCase()] : undefined;
}

/** Checked hashrate in H/s: negative or beyond the protocol bound is dropped and flagged. */
export function hashrateHs(value: unknown, multiplier: number, flags: Flags): number | undefined {
  const n = num(value, flags);
  if (n === undefined) return undefined;
  // Whole H/s: the unit conversion must not leave float dust like 34655800000000.004.
  const hs = Math.round(n * multiplier);
  if (hs < 0 || hs > LIMITS.maxHashrateHs) {
    flags.add('hashrate_absurd');
    return undefined;
  }
  return hs;
}

/** Checked power in W. */
export function powerW(value: unknown, flags: Flags): number | undefined {
  const n = num(value, flags);
  if (n === undefined) return undefined;
  if (n < 0 || n > LIMITS.maxPowerW) {
    flags.add('power_absurd');
    return undefined;
  }
  return n;
}

/**
 * Checked temperature in °C. Exactly 0 means "no sensor" on every cgminer-family firmware (empty
 * slots and dead boards report 0), so it is treated as absent rather than as a frozen rig.
 */
export function tempC(value: unknown, flags: Flags): number | undefined {
  const n = num(value, flags);
  if (n === undefined || n === 0) return undefined;
  if (n < LIMITS.minTempC || n > LIMITS.maxTempC) {
    flags.add('temp_absurd');
    return undefined;
  }
  return n;
}

/** Checked fan speed in rpm (0 is a real reading: a stopped fan). */
export function fanRpm(value: unknown, flags: Flags): number | undefined {
  const n = num(value, flags);
  if (n === undefined) return undefined;
  if (n < 0 || n > LIMITS.maxFanRpm) {
    flags.add('fan_absurd');
    return undefined;
  }
  return n;
}

/** Checked counter: firmware sends floats (`"156.0000"`), the protocol wants a non-negative integer. */
export function counter(value: unknown, flags: Flags): number | undefined {
  const n = num(value, flags);
  if (n === undefined) return undefined;
  if (n < 0 || n > LIMITS.maxCounter) {
    flags.add('counter_absurd');
    return undefined;
  }
  return Math.round(n);
}

/** Keeps a text within the protocol's free-text limit. */
export function text(value: string): string {
  return value.length > LIMITS.maxTextLength ? `${value.slice(0, LIMITS.maxTextLength - 1)}…` : value;
}

/** A sample for a rig the agent could not read at all. */
export function errorSample(rig: string, tsMs: number, kind: PollErrorKind, message: string): RigSample {
  return { rig, ts: tsMs, reachable: false, error: { kind, message: text(message) } };
}

/** Maps a socket or fetch error to a poll error kind. */
export function classifyNetError(err: unknown): PollErrorKind {
  const code = errorCode(err);
  switch (code) {
    case 'ECONNREFUSED':
      return 'refused';
    case 'ETIMEDOUT':
    case 'ABORT_ERR':
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
      return 'timeout';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EADDRNOTAVAIL':
      return 'unreachable';
    case 'ECONNRESET':
    case 'EPIPE':
    case 'UND_ERR_SOCKET':
      return 'protocol';
    default:
      if (err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError')) return 'timeout';
      return 'other';
  }
}

/** The `code` of a Node error, looking through fetch's `cause` wrapper. */
export function errorCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { code?: unknown; cause?: unknown; name?: unknown };
  if (typeof e.code === 'string') return e.code;
  if (e.cause !== undefined) return errorCode(e.cause);
  return undefined;
}

/** A one-line description of an error for an operator. */
export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = errorCode(err);
    const cause = (err as { cause?: unknown }).cause;
    const causeMsg = cause instanceof Error && cause.message !== err.message ? `: ${cause.message}` : '';
    return `${err.message}${causeMsg}${code && !err.message.includes(code) ? ` (${code})` : ''}`;
  }
  return String(err);
}

/** A signal that aborts at a deadline or with its parent; `clear()` once the work is done. */
export interface Deadline {
  signal: AbortSignal;
  clear(): void;
}

/**
 * Combines the caller's signal with a deadline of `timeoutMs` (abort reason: a `TimeoutError`,
 * as `AbortSignal.timeout` gives). One controller, one timer and one listener, all released by
 * `clear()`; `AbortSignal.any` + `AbortSignal.timeout` cost two more signals and weak references
 * per call and leave their timer running after the work is done.
 */
export function deadline(signal: AbortSignal, timeoutMs: number): Deadline {
  const controller = new AbortController();
  if (signal.aborted) {
    controller.abort(signal.reason);
    return { signal: controller.signal, clear: () => {} };
  }
  const onAbort = (): void => controller.abort(signal.reason);
  signal.addEventListener('abort', onAbort, { once: true });
  const timer = setTimeout(
    () => controller.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError')),
    Math.max(1, timeoutMs),
  );
  return {
    signal: controller.signal,
    clear: () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    },
  };
}

/** Runs `work` under `deadline(signal, timeoutMs)` and releases the deadline after it. */
export async function withDeadline<T>(
  signal: AbortSignal,
  timeoutMs: number,
  work: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const d = deadline(signal, timeoutMs);
  try {
    return await work(d.signal);
  } finally {
    d.clear();
  }
}

/**
 * The last guard before a sample leaves a reader: anything the schema would reject (a parser bug,
 * a value no check caught) turns into an `invalid_reply` sample naming the field, never a report
 * the collector drops.
 */
export function finalizeSample(sample: RigSample): RigSample {
  const checked = validate(
    'report',
    { v: 1, boot_id: 'sample-guard', seq: 0, ts: sample.ts, interval_ms: 1000, rigs: [sample], probes: [] },
    sample.ts,
  );
  if (checked.ok) return sample;
  const error: PollError = {
    kind: 'invalid_reply',
    message: text(`Rig reply produced a sample the protocol rejects: ${checked.error.message}`),
  };
  return { rig: sample.rig, ts: sample.ts, reachable: sample.reachable, error, flags: ['sample_invalid'] };
}

/** Drops undefined properties so samples compare and serialise cleanly. */
export function compact<T extends object>(value: T): T {
  for (const key of Object.keys(value) as (keyof T)[]) {
    if (value[key] === undefined) delete value[key];
  }
  return value;
}
