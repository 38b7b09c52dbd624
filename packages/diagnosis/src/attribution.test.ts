import { describe, expect, it } from 'vitest';
import { attribution } from './attribution.js';
import type { AccountingRow, State } from './types.js';

const row = (ts: number, state: State, deficit: number): AccountingRow => ({
  site: 's',
  host: 'h',
  rig: 'r',
  ts,
  duration_ms: 1000,
  state,
  expected_hs: 10,
  actual_hs: 10 - deficit,
  deficit_hashes: deficit,
  energy_j: null,
});

describe('attribution', () => {
  it('splits the deficit by state and the parts sum exactly to the total', () => {
    const rows = [
      row(0, 'ok', 0.1),
      row(1000, 'connectivity_loss', 10),
      row(2000, 'hardware_fault', 7),
      row(3000, 'connectivity_loss', 10),
    ];
    const a = attribution(rows, 0, 4000);
    expect(a.byCause).toEqual({ ok: 0.1, connectivity_loss: 20, hardware_fault: 7 });
    expect(a.deficitHashes).toBeCloseTo(27.1, 10);
    const sum = Object.values(a.byCause).reduce((x, y) => x + (y ?? 0), 0);
    expect(sum).toBe(a.deficitHashes);
    expect(Object.values(a.shares).reduce((x, y) => x + (y ?? 0), 0)).toBeCloseTo(1, 12);
  });

  it('pro-rates rows cut by the window edges and ignores rows outside', () => {
    const rows = [row(0, 'power_loss', 10), row(1000, 'pool_outage', 10), row(5000, 'pool_outage', 10)];
    const a = attribution(rows, 500, 1250);
    expect(a.byCause.power_loss).toBeCloseTo(5, 10);
    expect(a.byCause.pool_outage).toBeCloseTo(2.5, 10);
    expect(a.deficitHashes).toBeCloseTo(7.5, 10);
  });

  it('returns zero and no shares for an empty window', () => {
    expect(attribution([], 0, 1000)).toMatchObject({ deficitHashes: 0, byCause: {}, shares: {} });
  });
});
