import { describe, expect, it } from 'vitest';
import { RetentionPacer } from './retention-pacer.js';

describe('RetentionPacer', () => {
  it('starts small, grows a fast phase at most twofold per chunk, and settles near the target', () => {
    const pacer = new RetentionPacer(50);
    const start = pacer.slices.minuteRigs ?? 0;
    // A chunk costs 0.1 ms per rig here: the target is 500 rigs.
    pacer.observe('minute', start * 0.1);
    expect(pacer.slices.minuteRigs).toBe(start * 2);
    for (let i = 0; i < 20; i++) pacer.observe('minute', (pacer.slices.minuteRigs ?? 0) * 0.1);
    expect(pacer.slices.minuteRigs).toBe(500);
  });

  it('shrinks a slow phase at most by half per chunk, never below one rig, and leaves the others', () => {
    const pacer = new RetentionPacer(50);
    const before = pacer.slices;
    pacer.observe('raw', 10_000);
    expect(pacer.slices.rawRigs).toBe((before.rawRigs ?? 0) / 2);
    for (let i = 0; i < 30; i++) pacer.observe('raw', 10_000);
    expect(pacer.slices.rawRigs).toBe(1);
    expect(pacer.slices.minuteRigs).toBe(before.minuteRigs);
  });

  it('leaves accounting, phases sized in rows and steps that did nothing to their defaults', () => {
    const pacer = new RetentionPacer(50);
    const before = pacer.slices;
    expect(before.accountingRigs).toBeUndefined();
    pacer.observe('accounting', 10_000);
    pacer.observe('drop', 1);
    pacer.observe('probes', 10_000);
    pacer.observe(undefined, 1);
    expect(pacer.slices).toEqual(before);
  });
});
