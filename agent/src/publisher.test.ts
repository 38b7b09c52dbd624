import { encode, exampleReport } from '@hashwatch/protocol';
import { describe, expect, it } from 'vitest';
import { asHistorical } from './publisher.js';

describe('asHistorical', () => {
  it('marks a spooled report historical and keeps it protocol-valid and otherwise identical', () => {
    const now = Date.UTC(2026, 0, 1);
    const report = exampleReport(now, 2, 7);
    const live = encode('report', report, now);
    if (!live.ok) throw new Error(live.error.message);
    const replayed = JSON.parse(asHistorical(live.value));
    expect(replayed).toEqual({ ...report, historical: true });
    expect(encode('report', replayed, now).ok).toBe(true);
  });
});
