/**
 * "Where did my hashrate go": the deficit of any window split by cause, from accounting rows.
 * The same answer a store gives with `SUM(deficit_hashes) GROUP BY state`, plus pro-rating of the
 * rows that straddle the window's edges.
 */
import type { AccountingRow, State } from './types.js';

export interface Attribution {
  fromMs: number;
  toMs: number;
  /** Total deficit in hashes over the window; equals the sum of `byCause`. */
  deficitHashes: number;
  /** Deficit per state (including `ok`: the small shortfall of healthy rigs), in hashes. */
  byCause: Partial<Record<State, number>>;
  /** Share of the total per state, 0..1 (empty when the total is 0). */
  shares: Partial<Record<State, number>>;
}

/** Splits the deficit of rows over [fromMs, toMs) by state, pro-rating rows cut by the edges. */
export function attribution(rows: Iterable<AccountingRow>, fromMs: number, toMs: number): Attribution {
  const byCause: Partial<Record<State, number>> = {};
  for (const row of rows) {
    const start = row.ts;
    const end = row.ts + row.duration_ms;
    const overlap = Math.min(end, toMs) - Math.max(start, fromMs);
    if (overlap <= 0 || row.duration_ms <= 0) continue;
    const part = row.deficit_hashes * (overlap / row.duration_ms);
    byCause[row.state] = (byCause[row.state] ?? 0) + part;
  }
  // The total is the sum of the parts, so the split always adds up exactly.
  let deficitHashes = 0;
  for (const v of Object.values(byCause)) deficitHashes += v ?? 0;
  const shares: Partial<Record<State, number>> = {};
  if (deficitHashes > 0) {
    for (const [k, v] of Object.entries(byCause)) shares[k as State] = (v ?? 0) / deficitHashes;
  }
  return { fromMs, toMs, deficitHashes, byCause, shares };
}
