/**
 * Keeps the benchmark script from rotting: runs `test/bench/run.ts --quick` (tiny sizes, short
 * windows) as a real process on a subset of suites and checks that it produced well-formed
 * results. No speed assertions: only that every figure exists and is a sane number.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { BenchResults } from './bench/run.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const TSX = join(ROOT, 'node_modules/.bin/tsx');
const dir = mkdtempSync(join(tmpdir(), 'hw-bench-smoke-'));

afterAll(() => rmSync(dir, { recursive: true, force: true }));

const positive = (n: number | undefined) => typeof n === 'number' && Number.isFinite(n) && n > 0;

describe('npm run bench --quick', () => {
  it('runs the fleet, ingest, scrape, diagnosis and retention suites and writes well-formed results', () => {
    for (const f of ['collector/dist/cli.js', 'agent/dist/cli.js']) {
      if (!existsSync(join(ROOT, f))) throw new Error(`${f} is missing: run \`npx tsc -b\` before this test`);
    }
    const md = join(dir, 'BENCHMARKS.md');
    const json = join(dir, 'results.json');
    const run = spawnSync(
      TSX,
      [
        'test/bench/run.ts',
        '--quick',
        '--only',
        'ingest,fleet,scrape,diagnosis,retention',
        '--out',
        md,
        '--json',
        json,
      ],
      { cwd: ROOT, encoding: 'utf8', timeout: 170_000 },
    );
    expect(run.status, `bench exited with ${run.status}:\n${run.stderr}`).toBe(0);
    const r = JSON.parse(readFileSync(json, 'utf8')) as BenchResults;
    expect(r.errors).toEqual({});
    expect(r.quick).toBe(true);
    expect(r.machine['cores']).toBeGreaterThan(0);
    expect(String(r.machine['sqlite'])).toMatch(/^3\.\d+/);

    expect(r.ingest?.ceilings.map((c) => c.rigsPerReport)).toEqual([1, 100]);
    for (const c of r.ingest?.ceilings ?? []) expect([c.rawPerS, c.storePerS, c.decodePerS].every(positive)).toBe(true);
    expect(r.ingest?.rows.map((x) => `${x.broker}/${x.rigsPerReport}`)).toEqual([
      'embedded/1',
      'embedded/100',
      'mosquitto/1',
      'mosquitto/100',
    ]);
    // Acks came back through both brokers: the publishers really talked to a collector.
    for (const row of r.ingest?.rows ?? []) {
      expect(positive(row.medianSamplesPerS), JSON.stringify(row)).toBe(true);
      // The publishers' share of the cores is measured, not left out.
      for (const run of row.runs) expect(positive(run.publisherCpuPercent ?? 0), JSON.stringify(run)).toBe(true);
    }

    const f = r.fleet;
    expect(f && positive(f.ackedSamplesPerS) && positive(f.p99AckMs) && positive(f.bytesPerSample)).toBe(true);
    expect(f?.samplesStored).toBeGreaterThan(0);
    // The fleet was scraped during its window (1 s apart in the quick run), and the event-loop
    // gauges were read from the collector's own page.
    expect(f?.scrape?.scrapes).toBeGreaterThanOrEqual(2);
    expect(positive(f?.scrape?.p50Ms) && positive(f?.scrape?.gzipBytes) && positive(f?.scrape?.loopDelayMaxMs)).toBe(
      true,
    );
    // The settled size went through the retention tiers, and compaction made accounting smaller.
    const st = f?.storage;
    expect(st?.tables.find((t) => t.table === 'samples')?.rows).toBe(f?.samplesStored);
    expect(positive(st?.minuteBytesPerRow) && positive(st?.hourBytesPerRow)).toBe(true);
    expect(st?.settledBytesPerRig).toBeLessThan(st?.settledUncompactedBytesPerRig ?? 0);

    expect(r.retention?.phases.map((p) => p.phase).sort()).toEqual([
      '1 minute → 1 hour',
      'accounting compaction',
      'raw → 1 minute',
    ]);
    for (const p of r.retention?.phases ?? []) expect(positive(p.longestMs) && p.chunks > 0, p.phase).toBe(true);
    const compaction = r.retention?.phases.find((p) => p.phase === 'accounting compaction');
    expect(compaction?.rowsAfter).toBeLessThan((compaction?.rows ?? 0) / 10);

    expect(r.scrape?.length).toBe(2);
    const [on, off] = r.scrape ?? [];
    expect(on?.perRig).toBe(true);
    expect(off?.perRig).toBe(false);
    expect((on?.series ?? 0) > (off?.series ?? 0)).toBe(true);
    expect(positive(on?.httpGzipMs) && positive(on?.gzipBytes)).toBe(true);

    expect(r.diagnosis?.length).toBe(1);
    expect(positive(r.diagnosis?.[0]?.msPerReport) && positive(r.diagnosis?.[0]?.exportedBytesPerRig)).toBe(true);

    const text = readFileSync(md, 'utf8');
    for (const heading of [
      '# Benchmarks',
      '## Machine',
      '## Ingest',
      '## Fleet',
      '### Database size per rig',
      '## Scrape',
      '## Diagnosis',
      '## Retention',
    ]) {
      expect(text).toContain(heading);
    }
    expect(text).not.toContain('failed');
    expect(text).not.toMatch(/\bNaN\b|undefined/);
  }, 180_000);
});
