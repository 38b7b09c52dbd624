/**
 * Experiment behind finding 32 of BENCHMARKS.md, not part of `npm run bench`: how fast would a
 * report decode if its rigs came as columns (one array per field) instead of one object per rig?
 * DESIGN.md fixes today's row shape; this measures what a protocol change would buy, in process:
 *
 *   npx tsx test/bench/experiments/columnar-report.ts [rigs per report, default 100]
 *
 * The row report is the Ingest suite's (a simulated S19 as the cgminer reader gives it), with its
 * values varied per rig. Columnar: every scalar field an array with one value per rig; every list
 * (temps, fans, boards, pools) an object of fields, each an array per rig of that rig's values;
 * "names once" also sends a string field that is the same for every rig (sensor and fan names,
 * board ids, the pool URL) as one list. Its check is a hand-written type walk of every value,
 * standing for the schema check the collector would need.
 */
import { decode, type Report } from '@hashwatch/protocol';
import { ReportTemplate, realSampleShape } from '../../fleet/payload.js';

type Row = Record<string, unknown>;
type Column = unknown[] | Record<string, unknown[] | { all: unknown[] }>;

const RIGS = Number(process.argv[2] ?? 100);
const nowMs = Date.now();
const report = JSON.parse(
  new ReportTemplate(await realSampleShape(), RIGS, 'bench-boot-1', 10_000).render(1, nowMs),
) as Report;
report.rigs.forEach((r, i) => {
  const f = 1 + ((i * 7919) % 1000) / 10_000;
  r.hashrate_hs = Math.round((r.hashrate_hs ?? 0) * f);
  r.accepted = 1000 + i * 37;
  r.uptime_s = 86_400 + i * 13;
  r.temps?.forEach((t, j) => {
    t.temp_c = 60 + ((i + j) % 15);
  });
  r.fans?.forEach((t, j) => {
    t.rpm = 5300 + ((i * 31 + j) % 300);
  });
  r.boards?.forEach((b, j) => {
    b.hashrate_hs = Math.round((b.hashrate_hs ?? 0) * f) + j;
  });
});

function toColumns(rigs: Row[], namesOnce: boolean): Record<string, Column> {
  const first = rigs[0] as Row;
  const out: Record<string, Column> = {};
  for (const key of Object.keys(first)) {
    if (!Array.isArray(first[key])) {
      out[key] = rigs.map((r) => r[key] ?? null);
      continue;
    }
    const nested: Record<string, unknown[] | { all: unknown[] }> = {};
    for (const field of Object.keys((first[key] as Row[])[0] ?? {})) {
      const perRig = rigs.map((r) => (r[key] as Row[]).map((o) => o[field] ?? null));
      const text = JSON.stringify(perRig[0]);
      const same = perRig.every((v) => JSON.stringify(v) === text);
      nested[field] =
        namesOnce && same && typeof perRig[0]?.[0] === 'string' ? { all: perRig[0] as unknown[] } : perRig;
    }
    out[key] = nested;
  }
  return out;
}

const isValue = (v: unknown) => v === null || typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean';

/** Every column has one entry per rig, and every value is a JSON scalar. */
function checkColumns(doc: { rigs: Record<string, Column> }): boolean {
  for (const column of Object.values(doc.rigs)) {
    if (Array.isArray(column)) {
      if (column.length !== RIGS) return false;
      for (const v of column) if (!isValue(v)) return false;
      continue;
    }
    for (const values of Object.values(column)) {
      if (!Array.isArray(values)) continue; // `{ all }`: one list for every rig
      if (values.length !== RIGS) return false;
      for (const perRig of values) {
        if (!Array.isArray(perRig)) return false;
        for (const v of perRig) if (!isValue(v)) return false;
      }
    }
  }
  return true;
}

const rows = Buffer.from(JSON.stringify(report));
const columns = Buffer.from(JSON.stringify({ ...report, rigs: toColumns(report.rigs as Row[], false) }));
const namesOnce = Buffer.from(JSON.stringify({ ...report, rigs: toColumns(report.rigs as Row[], true) }));

/** Rig samples per second through `fn`, one report per call, after a warm-up. */
function rate(fn: () => boolean): number {
  const reps = Math.ceil(300_000 / RIGS);
  for (let i = 0; i < Math.min(reps, 200); i++) fn();
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) if (!fn()) throw new Error('a report failed its check');
  return (reps * RIGS) / ((performance.now() - t0) / 1000);
}

const k = (n: number) => `${Math.round(n / 1000)}k`;
for (let round = 1; round <= 3; round++) {
  const today = rate(() => decode('report', rows, nowMs).ok);
  const rowParse = rate(() => JSON.parse(rows.toString()) !== null);
  const colCheck = rate(() => checkColumns(JSON.parse(columns.toString())));
  const onceCheck = rate(() => checkColumns(JSON.parse(namesOnce.toString())));
  console.log(
    `round ${round}, rig samples/s: rows decode() ${k(today)}, rows JSON.parse ${k(rowParse)}, ` +
      `columns parse+check ${k(colCheck)}, names once parse+check ${k(onceCheck)}`,
  );
}
console.log(
  `bytes per ${RIGS}-rig report: rows ${rows.length}, columns ${columns.length}, names once ${namesOnce.length}`,
);
