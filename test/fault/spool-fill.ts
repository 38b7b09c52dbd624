/**
 * Writes a stretch of protocol-valid reports into an agent's spool through the agent's own Spool
 * class, as a clock-driven agent cut off for that long would have: one boot, dense seqs from 0,
 * one report per interval ending now. The next agent start finds them and replays them as
 * historical, exactly as after a real outage (the spool does not care who wrote the rows).
 */
import { randomUUID } from 'node:crypto';
import { encode, exampleReport } from '@hashwatch/protocol';
import { silentLogger } from '../../agent/src/log.js';
import { Spool } from '../../agent/src/spool.js';

export interface FillResult {
  bootId: string;
  reports: number;
  firstTs: number;
  lastTs: number;
}

/** Spools `count` reports `intervalMs` apart (the last one at `nowMs`), `rigs` samples each. */
export function fillSpool(
  dir: string,
  count: number,
  intervalMs: number,
  rigs: number,
  nowMs = Date.now(),
): FillResult {
  const bootId = randomUUID();
  const spool = new Spool({
    dir,
    maxBytes: 1024 * 1024 * 1024,
    maxAgeMs: 7 * 86_400_000,
    memoryMaxReports: 0,
    log: silentLogger(),
  });
  let seq = spool.open(bootId, nowMs);
  const firstTs = nowMs - (count - 1) * intervalMs;
  try {
    for (let i = 0; i < count; i++) {
      const ts = firstTs + i * intervalMs;
      const report = { ...exampleReport(ts, rigs, seq), boot_id: bootId, interval_ms: intervalMs };
      const encoded = encode('report', report, ts);
      if (!encoded.ok) throw new Error(`fixture report is invalid: ${encoded.error.message}`);
      const outcome = spool.append(
        { bootId, seq, ts, size: Buffer.byteLength(encoded.value), payload: encoded.value },
        ts,
      );
      if (outcome !== 'disk') throw new Error(`spool refused report ${seq}: ${outcome}`);
      seq++;
    }
  } finally {
    spool.close();
  }
  return { bootId, reports: count, firstTs, lastTs: firstTs + (count - 1) * intervalMs };
}
