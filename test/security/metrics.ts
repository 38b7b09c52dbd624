/**
 * Reads counters from the collector's /metrics (Prometheus text) for the security tests.
 */
import type { CollectorHandle } from '../helpers/stack.js';

/** `name{labels}` → value for every sample line. */
export async function scrape(collector: CollectorHandle): Promise<Map<string, number>> {
  const res = await collector.get('/metrics');
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}: ${res.text.slice(0, 200)}`);
  const out = new Map<string, number>();
  for (const line of res.text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{.*\})?)\s+(\S+)/.exec(line);
    if (m) out.set(m[1] as string, Number(m[2]));
  }
  return out;
}

/** Sum of every series of `name` (any labels). */
export function sum(metrics: Map<string, number>, name: string): number {
  let n = 0;
  for (const [key, v] of metrics) if (key === name || key.startsWith(`${name}{`)) n += v;
  return n;
}

/** Series of `name` by the value of `label`. */
export function byLabel(metrics: Map<string, number>, name: string, label: string): Record<string, number> {
  const out: Record<string, number> = {};
  const re = new RegExp(`${label}="([^"]*)"`);
  for (const [key, v] of metrics) {
    if (!key.startsWith(`${name}{`)) continue;
    const m = re.exec(key);
    if (m) out[m[1] as string] = (out[m[1] as string] ?? 0) + v;
  }
  return out;
}
