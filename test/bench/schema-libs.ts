/**
 * Why the protocol validates with ajv (TypeBox schemas) rather than zod: decode 100k realistic
 * report payloads (JSON.parse + validation) with each, against JSON.parse alone as the baseline.
 * Run: npx tsx test/bench/schema-libs.ts
 */
import { decode, exampleReport, type Report } from '@hashwatch/protocol';
import { z } from 'zod';

const NOW = Date.now();
const N = 100_000;
const RIGS = 10;

const payloads: string[] = [];
for (let i = 0; i < 1000; i++) {
  const r = exampleReport(NOW, RIGS, i);
  for (const rig of r.rigs) rig.hashrate_hs = 100e12 + i * 1e9;
  payloads.push(JSON.stringify(r));
}
const bytes = payloads.reduce((a, p) => a + p.length, 0) / payloads.length;

// The same constraints as the TypeBox schema, written in zod 4 for the comparison.
const id = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/);
const counter = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const ts = z
  .number()
  .int()
  .min(Date.UTC(2020, 0, 1));
const temp = z.number().min(-60).max(250);
const rigSample = z.strictObject({
  rig: id,
  ts,
  reachable: z.boolean(),
  error: z
    .strictObject({
      kind: z.enum(['timeout', 'refused', 'unreachable', 'protocol', 'invalid_reply', 'other']),
      message: z.string().max(512),
    })
    .optional(),
  hashrate_hs: z.number().min(0).max(1e17).optional(),
  hashrate_avg_hs: z.number().min(0).max(1e17).optional(),
  hashrate_ideal_hs: z.number().min(0).max(1e17).optional(),
  power_w: z.number().min(0).max(100000).optional(),
  power_source: z.enum(['rig', 'meter']).optional(),
  temps: z
    .array(z.strictObject({ sensor: id, temp_c: temp }))
    .max(64)
    .optional(),
  fans: z
    .array(z.strictObject({ fan: id, rpm: z.number().min(0).max(50000) }))
    .max(16)
    .optional(),
  boards: z
    .array(
      z.strictObject({
        board: id,
        ok: z.boolean(),
        chips_seen: counter.optional(),
        chips_expected: counter.optional(),
        hashrate_hs: z.number().min(0).max(1e17).optional(),
        temp_c: temp.optional(),
        hw_errors: counter.optional(),
      }),
    )
    .max(16)
    .optional(),
  hw_errors: counter.optional(),
  accepted: counter.optional(),
  rejected: counter.optional(),
  stale: counter.optional(),
  pools: z
    .array(
      z.strictObject({
        url: z.string().max(512),
        status: z.enum(['alive', 'dead', 'disabled', 'rejecting', 'unknown']),
        active: z.boolean(),
        last_share_ts: ts.optional(),
        accepted: counter.optional(),
        rejected: counter.optional(),
        stale: counter.optional(),
        get_failures: counter.optional(),
        remote_failures: counter.optional(),
      }),
    )
    .max(8)
    .optional(),
  uptime_s: counter.optional(),
  firmware_errors: z
    .array(z.strictObject({ code: z.string(), kind: z.string(), message: z.string() }))
    .max(32)
    .optional(),
  flags: z.array(z.string()).max(16).optional(),
});
const probe = z.strictObject({
  target: id,
  kind: z.enum(['gateway', 'dns', 'tcp', 'stratum', 'http', 'icmp']),
  role: z.enum(['gateway', 'dns', 'internet', 'pool']),
  ok: z.boolean(),
  attempts: z.number().int().min(1).max(100),
  loss_ratio: z.number().min(0).max(1),
  latency_ms: z.number().min(0).optional(),
  error_class: z.string().optional(),
  error: z.string().max(512).optional(),
  ts,
});
const reportZ = z.strictObject({
  v: z.literal(1),
  boot_id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{7,63}$/),
  seq: counter,
  ts,
  interval_ms: z.number().int().min(1000).max(3_600_000),
  historical: z.boolean().optional(),
  rigs: z.array(rigSample).max(1000),
  probes: z.array(probe).max(64),
  agent: z
    .strictObject({
      spool_depth: counter,
      spool_bytes: counter,
      spool_oldest_ts: ts.optional(),
      spool_dropped_total: counter,
      publish_latency_ms: z.number().min(0).optional(),
      poll_duration_ms: z.number().min(0),
      errors: z.record(z.string(), counter),
    })
    .optional(),
});

function run(name: string, fn: (p: string) => boolean): number {
  let ok = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) if (fn(payloads[i % payloads.length] as string)) ok++;
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (ok !== N) throw new Error(`${name}: only ${ok}/${N} valid`);
  return ms;
}

const results: Record<string, number[]> = { 'JSON.parse only': [], 'ajv (TypeBox schema)': [], 'zod 4': [] };
for (let round = 0; round < 3; round++) {
  results['JSON.parse only']!.push(run('parse', (p) => typeof (JSON.parse(p) as Report).seq === 'number'));
  results['ajv (TypeBox schema)']!.push(run('ajv', (p) => decode('report', p, NOW).ok));
  results['zod 4']!.push(run('zod', (p) => reportZ.safeParse(JSON.parse(p)).success));
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[1] as number;
const base = median(results['JSON.parse only']!);
console.log(
  `${N} report payloads of ${RIGS} rigs (${Math.round(bytes)} bytes each), median of 3 runs, node ${process.version}`,
);
for (const [name, xs] of Object.entries(results)) {
  const ms = median(xs);
  console.log(
    `${name.padEnd(22)} ${ms.toFixed(0).padStart(6)} ms  ${((N / ms) * 1000).toFixed(0).padStart(8)} reports/s  ${(ms / base).toFixed(2)}x JSON.parse`,
  );
}
