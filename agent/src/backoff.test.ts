import { describe, expect, it } from 'vitest';
import { backoffDelayMs, DEFAULT_BACKOFF } from './backoff.js';

const opts = { initialMs: 100, maxMs: 5000, factor: 2 };

describe('backoffDelayMs', () => {
  it('grows exponentially between half-step and step', () => {
    expect(backoffDelayMs(0, opts, () => 0)).toBe(50);
    expect(backoffDelayMs(0, opts, () => 0.999999)).toBe(100);
    expect(backoffDelayMs(3, opts, () => 0)).toBe(400);
    expect(backoffDelayMs(3, opts, () => 0.5)).toBe(600);
  });

  it('never exceeds the cap, even for huge attempt counts', () => {
    for (const attempt of [6, 10, 100, 10_000, Number.MAX_SAFE_INTEGER]) {
      const d = backoffDelayMs(attempt, opts, () => 0.999999);
      expect(d).toBeLessThanOrEqual(5000);
      expect(d).toBeGreaterThanOrEqual(2500);
    }
  });

  it('treats negative or fractional attempts as the first one and clamps bad random values', () => {
    expect(backoffDelayMs(-3, opts, () => 0)).toBe(50);
    expect(backoffDelayMs(0.7, opts, () => 0)).toBe(50);
    expect(backoffDelayMs(0, opts, () => 7)).toBe(100);
    expect(backoffDelayMs(0, opts, () => -1)).toBe(50);
  });

  it('spreads delays (jitter) with the real random source', () => {
    const delays = new Set(Array.from({ length: 50 }, () => backoffDelayMs(4, DEFAULT_BACKOFF)));
    expect(delays.size).toBeGreaterThan(1);
  });
});
