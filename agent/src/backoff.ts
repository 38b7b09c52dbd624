/**
 * Reconnect delays: capped exponential backoff with "full jitter" (a uniform draw between half
 * the exponential step and the step). Jitter keeps a farm's agents from reconnecting in lockstep
 * after a broker restart. Pure: the random source is an argument.
 */

export interface BackoffOptions {
  /** Delay before the first retry. */
  initialMs: number;
  /** Upper bound of any delay. */
  maxMs: number;
  /** Growth per failed attempt. */
  factor: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 500, maxMs: 30_000, factor: 2 };

/**
 * Delay before retry number `attempt` (0 = first retry after a loss). `random` returns [0, 1).
 * The result lies in [step/2, step] where step = min(maxMs, initialMs * factor^attempt).
 */
export function backoffDelayMs(attempt: number, options: BackoffOptions, random: () => number = Math.random): number {
  const safeAttempt = Math.max(0, Math.floor(attempt));
  // Past ~60 doublings the float overflows to Infinity; min() with maxMs keeps it bounded anyway.
  const step = Math.min(options.maxMs, options.initialMs * options.factor ** Math.min(safeAttempt, 64));
  const r = Math.min(Math.max(random(), 0), 1);
  return Math.round(step / 2 + (step / 2) * r);
}
