import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { exampleBirth, exampleReport, exampleRigSample, type Report } from '@hashwatch/protocol';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { applyDiagnoses, applyDiagnosis } from './diagnosis.js';
import { StoreError } from './errors.js';
import { attribution, rigSeries } from './queries.js';
import { runRetentionStep } from './retention.js';
import { MIGRATIONS } from './schema.js';
import { type PendingReport, Store, type StoreOptions, sampleColumns } from './store.js';
import type { WriterThread } from './writer-thread.js';

const DAY = 86_400_000;
let dir: string;
let file: string;
let store: Store;

function open(extra: Partial<StoreOptions> = {}): Store {
  const s = new Store({ path: file, busyTimeoutMs: 200, cacheSizeMiB: 8, checkpointPages: 1000, ...extra });
  s.open();
  return s;
}

function pending(s: Store, report: Report, receivedMs = report.ts): PendingReport {
  const ref = s.ensureHost('farm-a', 'host-1', receivedMs);
  return { site: 'farm-a', host: 'host-1', hostId: ref.hostId, report, receivedMs, skewMs: 0, skewed: false };
}

/** `days` of one rig sampled every `stepMs`, one report per sample, ending at `endMs`. */
function fill(s: Store, endMs: number, days: number, stepMs: number, hashrateHs: (ts: number) => number): number {
  const batch: PendingReport[] = [];
  let seq = 0;
  for (let ts = endMs - days * DAY; ts < endMs; ts += stepMs) {
    const r = exampleReport(ts, 0, seq++);
    r.rigs = [{ ...exampleRigSample(ts, 'rig-01'), hashrate_hs: hashrateHs(ts) }];
    r.probes = [];
    batch.push(pending(s, r));
  }
  s.commitReports(batch);
  return batch.length;
}

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hw-store-'));
  file = path.join(dir, 'hw.db');
});

afterEach(async () => {
  await store?.closeWriter();
  store?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('Store', () => {
  it('migrates a new file to the latest version and reopens it', () => {
    store = open();
    expect(store.db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
    expect(store.db.pragma('journal_mode', { simple: true })).toBe('wal');
    store.close();
    store = open();
    expect(store.db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
  });

  it('refuses a file written by a newer collector', () => {
    const db = new Database(file);
    db.pragma(`user_version = ${MIGRATIONS.length + 1}`);
    db.close();
    expect(() => open()).toThrowError(expect.objectContaining({ code: 'HW_ERR_STORE_SCHEMA' }));
  });

  it('reports a corrupt file as HW_ERR_STORE_CORRUPT', () => {
    fs.writeFileSync(file, Buffer.alloc(8192, 0x5a));
    let err: unknown;
    try {
      open();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StoreError);
    expect((err as StoreError).code).toBe('HW_ERR_STORE_CORRUPT');
    expect((err as StoreError).message).toMatch(/move the file aside/);
  });

  it('reports damage past the header as HW_ERR_STORE_CORRUPT on use', () => {
    store = open();
    store.commitReports([pending(store, exampleReport(Date.now(), 50, 0))]);
    store.close();
    const pageSize = 4096;
    const fd = fs.openSync(file, 'r+');
    const size = fs.fstatSync(fd).size;
    // keep page 1 (header + schema root), mangle every other page
    for (let off = pageSize; off < size; off += pageSize)
      fs.writeSync(fd, Buffer.alloc(pageSize, 0xa5), 0, pageSize, off);
    fs.closeSync(fd);
    let err: unknown;
    try {
      store = open();
      store.commitReports([pending(store, exampleReport(Date.now(), 50, 1))]);
    } catch (e) {
      err = e;
    }
    expect((err as StoreError | undefined)?.code).toBe('HW_ERR_STORE_CORRUPT');
  });

  it('reports a lock held by another process as HW_ERR_STORE_BUSY', () => {
    store = open();
    const other = new Database(file);
    other.prepare('BEGIN IMMEDIATE').run();
    try {
      expect(() => store.commitReports([pending(store, exampleReport(Date.now(), 1, 0))])).toThrowError(
        expect.objectContaining({ code: 'HW_ERR_STORE_BUSY' }),
      );
    } finally {
      other.prepare('ROLLBACK').run();
      other.close();
    }
  });

  it('writes a batch once: a repeated report is a duplicate and adds no samples', () => {
    store = open();
    const r = exampleReport(Date.now(), 3, 7);
    expect(store.commitReports([pending(store, r)]).outcomes).toEqual(['stored']);
    expect(store.commitReports([pending(store, r), pending(store, exampleReport(Date.now(), 3, 8))])).toEqual({
      outcomes: ['duplicate', 'stored'],
      samplesWritten: 3,
    });
    expect(store.db.prepare('SELECT COUNT(*) AS n FROM samples').get()).toEqual({ n: 6 });
  });

  it('keeps the inventory from a birth and the latest sample pointer across a reopen', () => {
    store = open();
    const now = Date.now();
    store.recordBirth('farm-a', 'host-1', exampleBirth(now), now);
    store.commitReports([pending(store, exampleReport(now, 2, 0))]);
    store.close();
    store = open();
    const rig = store.db.prepare("SELECT id, model, in_inventory FROM rigs WHERE name = 'rig-01'").get() as {
      id: number;
      model: string;
      in_inventory: number;
    };
    expect(rig).toMatchObject({ model: 'Antminer S19 Pro', in_inventory: 1 });
    expect(store.latestSample(rig.id)?.ts).toBe(now);
  });

  it('points each rig at its own latest row across multi-row inserts', () => {
    store = open();
    const now = Date.now();
    // 120 rigs: more than one multi-row INSERT per report
    store.commitReports([
      pending(store, exampleReport(now - 10_000, 120, 0)),
      pending(store, exampleReport(now, 120, 1)),
    ]);
    const rigs = store.db.prepare('SELECT id FROM rigs').all() as Array<{ id: number }>;
    expect(rigs).toHaveLength(120);
    const byId = store.db.prepare('SELECT rig_id, ts FROM samples WHERE id = ?');
    for (const { id } of rigs) expect(byId.get(store.latestSample(id)?.id)).toEqual({ rig_id: id, ts: now });
  });

  it('commits on the writer thread exactly what it commits inline', async () => {
    store = open({ writerThread: true });
    const now = Date.now();
    store.recordBirth('farm-a', 'host-1', exampleBirth(now), now);
    const first = exampleReport(now - 10_000, 120, 0);
    // a rig missing from the birth: the thread creates it, and the main thread learns its id
    (first.rigs[119] as { rig: string }).rig = 'rig-new';
    expect((await store.commit([pending(store, first)])).outcomes).toEqual(['stored']);
    const second = exampleReport(now, 120, 1);
    (second.rigs[119] as { rig: string }).rig = 'rig-new';
    expect(await store.commit([pending(store, first), pending(store, second)])).toEqual({
      outcomes: ['duplicate', 'stored'],
      samplesWritten: 120,
    });
    expect(store.db.prepare('SELECT COUNT(*) AS n FROM samples').get()).toEqual({ n: 240 });
    expect(store.db.prepare('SELECT COUNT(*) AS n FROM probe_results').get()).toEqual({
      n: 2 * first.probes.length,
    });
    const host = store.findHost('farm-a', 'host-1')?.hostId as number;
    const newRig = store.db.prepare("SELECT id FROM rigs WHERE name = 'rig-new'").get() as { id: number };
    expect(store.ensureRig(host, 'rig-new', now)).toBe(newRig.id);
    const byId = store.db.prepare('SELECT rig_id, ts FROM samples WHERE id = ?');
    const rigs = store.db.prepare('SELECT id FROM rigs WHERE last_sample_id IS NULL').all() as Array<{ id: number }>;
    expect(rigs.length).toBeGreaterThan(100);
    for (const { id } of rigs) expect(byId.get(store.latestSample(id)?.id)).toEqual({ rig_id: id, ts: now });
  });

  it('fails a writer-thread batch whose lock never comes, storing nothing, then commits the next', async () => {
    store = open({ writerThread: true });
    const item = pending(store, exampleReport(Date.now(), 1, 0));
    const other = new Database(file);
    other.prepare('BEGIN IMMEDIATE').run();
    try {
      // Health reads without the write lock: it neither waits for it nor fails on it.
      expect(store.health().ok).toBe(true);
      await expect(store.commit([item])).rejects.toMatchObject({
        name: 'StoreError',
        code: 'HW_ERR_STORE_BUSY',
      });
    } finally {
      other.prepare('ROLLBACK').run();
      other.close();
    }
    // The failed commit is what makes the store unhealthy (a full disk fails commits only).
    expect(store.health()).toMatchObject({ ok: false, detail: expect.stringContaining('last commit failed') });
    expect(store.db.prepare('SELECT COUNT(*) AS n FROM reports').get()).toEqual({ n: 0 });
    expect((await store.commit([item])).outcomes).toEqual(['stored']);
    expect(store.health().ok).toBe(true);
  });

  it.each([true, false])(
    'checkpoints the WAL and truncates it past checkpointPages (writer thread: %s)',
    async (writerThread) => {
      store = open({ writerThread, checkpointPages: 100 });
      const inline = vi.spyOn(store, 'maybeCheckpoint');
      for (let seq = 0; seq < 40; seq++) await store.commit([pending(store, exampleReport(Date.now(), 20, seq))]);
      const wal = `${file}-wal`;
      expect(fs.statSync(wal).size).toBeGreaterThan(100 * 4096);
      const result = await store.checkpoint();
      expect(result.walPages).toBeGreaterThan(100);
      expect(result.truncated).toBe(true);
      expect(fs.statSync(wal).size).toBe(0);
      // with a writer thread the main thread never runs it: it stood still for up to 130 ms
      expect(inline).toHaveBeenCalledTimes(writerThread ? 0 : 1);
      expect(store.db.prepare('SELECT COUNT(*) AS n FROM samples').get()).toEqual({ n: 800 });
      expect(await store.checkpoint()).toEqual({ walPages: 0, truncated: false });
    },
  );

  it.each([true, false])(
    'writes the latest-sample pointers with the checkpoint, on the thread that checkpoints (writer thread: %s)',
    async (writerThread) => {
      store = open({ writerThread });
      const onMain = vi.spyOn(store, 'flushLatest');
      for (let seq = 0; seq < 3; seq++) await store.commit([pending(store, exampleReport(Date.now() + seq, 5, seq))]);
      const pointers = store.db.prepare('SELECT id, last_sample_id, last_sample_ts FROM rigs ORDER BY id');
      const before = pointers.all() as Array<{ id: number; last_sample_id: number | null }>;
      expect(before).toHaveLength(5);
      expect(before.every((r) => r.last_sample_id === null)).toBe(true);
      await store.checkpoint();
      for (const r of pointers.all() as Array<{ id: number; last_sample_id: number; last_sample_ts: number }>) {
        const latest = store.latestSample(r.id);
        expect(latest).toBeDefined();
        expect({ id: r.last_sample_id, ts: r.last_sample_ts }).toEqual(latest);
      }
      expect(onMain).toHaveBeenCalledTimes(writerThread ? 0 : 1);
    },
  );

  it('keeps the pointers a failed checkpoint did not write and writes them with the next', async () => {
    store = open({ writerThread: true });
    await store.commit([pending(store, exampleReport(Date.now(), 4, 0))]);
    const other = new Database(file);
    other.prepare('BEGIN IMMEDIATE').run();
    try {
      await expect(store.checkpoint()).rejects.toMatchObject({ name: 'StoreError', code: 'HW_ERR_STORE_BUSY' });
    } finally {
      other.prepare('ROLLBACK').run();
      other.close();
    }
    const unwritten = store.db.prepare('SELECT COUNT(*) AS n FROM rigs WHERE last_sample_id IS NULL');
    expect(unwritten.get()).toEqual({ n: 4 });
    await store.checkpoint();
    expect(unwritten.get()).toEqual({ n: 0 });
  });

  it('fails the batches of a writer thread that died and starts a new one', async () => {
    const failures: StoreError[] = [];
    store = open({ writerThread: true, onWriterFailure: (e) => failures.push(e) });
    expect((await store.commit([pending(store, exampleReport(Date.now(), 2, 0))])).outcomes).toEqual(['stored']);
    // what an unexpected exit of the thread (a native crash, an OOM) looks like to the store
    const thread = (store as unknown as { thread: WriterThread }).thread;
    const worker = (thread as unknown as { worker: { terminate(): Promise<number> } }).worker;
    const inFlight = store.commit([pending(store, exampleReport(Date.now(), 2, 1))]);
    await worker.terminate();
    await expect(inFlight).rejects.toMatchObject({ code: 'HW_ERR_STORE' });
    expect(failures.map((f) => f.message)).toEqual([expect.stringContaining('writer thread exited')]);
    // the agent resends: a new thread stores it, or finds it stored if the dead one got that far
    const resent = await store.commit([pending(store, exampleReport(Date.now(), 2, 1))]);
    expect(resent.outcomes).toHaveLength(1);
    expect(store.db.prepare('SELECT COUNT(*) AS n FROM reports').get()).toEqual({ n: 2 });
    expect(store.db.prepare('SELECT COUNT(*) AS n FROM samples').get()).toEqual({ n: 4 });
  });

  it('stores every column of varied samples, NULLs included, inline and on the writer thread', async () => {
    const now = Date.UTC(2026, 5, 10);
    const base = exampleRigSample(now, 'rig-ok');
    const rigs = [
      base,
      { rig: 'rig-down', ts: now, reachable: false, error: { kind: 'timeout' as const, message: 'no answer' } },
      {
        ...base,
        rig: 'rig-odd',
        power_w: undefined,
        fans: [],
        boards: [
          { ...base.boards![0]!, ok: false, temp_c: undefined },
          { ...base.boards![1]!, temp_c: 99 },
        ],
        temps: [{ sensor: 'pcb', temp_c: 100 }],
        pools: [{ ...base.pools![0]!, active: false }],
        flags: ['reply_repaired'],
        firmware_errors: [{ code: 'E-503', message: 'board 0 missing' }],
      },
    ];
    const expected = [
      [1, 110e12, 3250, 72, 5400, 3, 3, 15120, 14, 2, 12, 1, null, null],
      [0, null, null, null, null, null, null, null, null, null, null, null, 'timeout', null],
      [1, 110e12, null, 100, null, 1, 2, 15120, 14, 2, 12, 0, null, 'reply_repaired,fw:E-503'],
    ];
    const columns =
      'reachable, hashrate_hs, power_w, temp_max_c, fan_min_rpm, boards_ok, boards_total, accepted, rejected, stale, hw_errors, pool_ok, error_kind, flags';
    for (const writerThread of [false, true]) {
      store = open({ writerThread });
      const report = exampleReport(now, 0, writerThread ? 2 : 1);
      report.rigs = rigs as Report['rigs'];
      await store.commit([pending(store, report)]);
      const rows = store.db
        .prepare(`SELECT ${columns} FROM samples s JOIN reports r ON r.id = s.report_id WHERE r.seq = ? ORDER BY s.id`)
        .raw()
        .all(report.seq);
      expect(rows).toEqual(expected);
      await store.closeWriter();
      store.close();
    }
    store = open();
  });

  it('reduces a sample to its stored columns', () => {
    const c = sampleColumns(exampleRigSample(Date.now()));
    expect(c).toMatchObject({
      reachable: 1,
      temp_max_c: 72,
      fan_min_rpm: 5400,
      boards_ok: 3,
      boards_total: 3,
      pool_ok: 1,
      flags: null,
    });
  });
});

describe('retention', () => {
  const opts = { rawDays: 2, minuteDays: 4, dropAfterDays: 6, chunkRows: 1000 };

  it('folds old raw samples into 1-minute averages and keeps recent ones raw', () => {
    store = open();
    const now = Date.UTC(2026, 5, 10);
    // 3 days at 20 s: hashrate alternates 100/200 within each minute, so the minute average is 150
    const written = fill(store, now, 3, 20_000, (ts) => (Math.floor(ts / 20_000) % 2 === 0 ? 100 : 200));
    let progress = runRetentionStep(store, opts, now, 10);
    expect(progress.done).toBe(false);
    while (!progress.done) progress = runRetentionStep(store, opts, now, 10);
    const raw = store.db.prepare('SELECT COUNT(*) AS n, MIN(ts) AS oldest FROM samples').get() as {
      n: number;
      oldest: number;
    };
    const minutes = store.db
      .prepare('SELECT COUNT(*) AS n, SUM(n) AS samples, MAX(ts) AS newest FROM samples_1m')
      .get() as { n: number; samples: number; newest: number };
    expect(raw.oldest).toBeGreaterThanOrEqual(now - 2 * DAY - 600_000);
    expect(raw.n + minutes.samples).toBe(written);
    expect(minutes.newest).toBeLessThan(now - 2 * DAY);
    const rigId = (store.db.prepare('SELECT id FROM rigs').get() as { id: number }).id;
    const series = rigSeries(store, rigId, now - 3 * DAY, now - 2.5 * DAY, 3_600_000, 10_000);
    expect(series).toHaveLength(12);
    for (const p of series) expect(p.hashrate_hs).toBeCloseTo(150, 6);
  });

  it('folds minutes into hours past minute_days and drops past drop_after_days', () => {
    store = open();
    const now = Date.UTC(2026, 5, 10);
    fill(store, now, 7, 120_000, () => 100);
    let progress = runRetentionStep(store, opts, now, 50);
    while (!progress.done) progress = runRetentionStep(store, opts, now, 50);
    const oldestHour = store.db.prepare('SELECT MIN(ts) AS ts, COUNT(*) AS n FROM samples_1h').get() as {
      ts: number;
      n: number;
    };
    expect(oldestHour.ts).toBeGreaterThanOrEqual(now - 6 * DAY);
    expect(oldestHour.n).toBe(48);
    expect(
      (store.db.prepare('SELECT MIN(ts) AS ts FROM samples_1m').get() as { ts: number }).ts,
    ).toBeGreaterThanOrEqual(now - 4 * DAY);
    expect((store.db.prepare('SELECT MIN(ts) AS ts FROM reports').get() as { ts: number }).ts).toBeGreaterThanOrEqual(
      now - 6 * DAY,
    );
    // the hourly rows still hold full hours of samples
    expect(store.db.prepare('SELECT DISTINCT n FROM samples_1h').all()).toEqual([{ n: 30 }]);
  });

  it('folds a bucket and an hour of many rigs a slice of rigs per chunk, resuming between passes', () => {
    store = open();
    const now = Date.UTC(2026, 5, 10);
    const db = store.db;
    const rigs = 2500;
    db.prepare("INSERT INTO sites (name, first_seen_ms) VALUES ('farm-a', 0)").run();
    db.prepare("INSERT INTO hosts (site_id, name, first_seen_ms) VALUES (1, 'host-1', 0)").run();
    const rig = db.prepare('INSERT INTO rigs (host_id, name, first_seen_ms) VALUES (1, ?, 0)');
    const sample = db.prepare(
      'INSERT INTO samples (rig_id, ts, report_id, reachable, hashrate_hs) VALUES (?, ?, 0, 1, ?)',
    );
    // One old 10-minute bucket: 2 samples a minute per rig, hashrate = the rig id.
    const bucket = now - 3 * DAY;
    db.transaction(() => {
      for (let k = 1; k <= rigs; k++) rig.run(`rig-${k}`);
      for (let i = 0; i < 20; i++) for (let k = 1; k <= rigs; k++) sample.run(k, bucket + i * 30_000, k);
    })();
    // One chunk per pass: the bucket takes one pass per 1,000 rigs, and stays counted once.
    const passes: number[] = [];
    for (let i = 0; i < 10; i++) {
      const p = runRetentionStep(store, { ...opts, minuteDays: 100, dropAfterDays: 200 }, now, 1);
      passes.push(p.rawBuckets);
      if (p.done) break;
    }
    expect(passes).toEqual([0, 0, 1, 0]);
    expect(db.prepare('SELECT COUNT(*) AS n FROM samples').get()).toEqual({ n: 0 });
    const minutes = db
      .prepare('SELECT COUNT(*) AS n, SUM(n) AS samples, SUM(hashrate_sum_hs) AS hs FROM samples_1m')
      .get();
    expect(minutes).toEqual({ n: rigs * 10, samples: rigs * 20, hs: 20 * ((rigs * (rigs + 1)) / 2) });
    // Two days later the minutes are past minute_days: an hour row per rig, 1,000 rigs per pass.
    const later = now + 2 * DAY;
    let p = runRetentionStep(store, opts, later, 1);
    // slices are id ranges from 0, and ids start at 1: the first holds 999 rigs
    expect(p.minuteRowsFolded).toBe(999 * 10);
    for (let i = 0; i < 10 && !p.done; i++) p = runRetentionStep(store, opts, later, 1);
    expect(db.prepare('SELECT COUNT(*) AS n FROM samples_1m').get()).toEqual({ n: 0 });
    expect(
      db.prepare('SELECT COUNT(*) AS n, SUM(n) AS samples, SUM(hashrate_sum_hs) AS hs FROM samples_1h').get(),
    ).toEqual({ n: rigs, samples: rigs * 20, hs: 20 * ((rigs * (rigs + 1)) / 2) });
  });
});

describe('attribution', () => {
  it('splits the deficit by cause, summing to the total', () => {
    store = open();
    const now = Date.now();
    store.ensureHost('farm-a', 'host-1', now);
    store.commitReports([pending(store, exampleReport(now, 2, 0))]);
    const row = (
      rig: string,
      ts: number,
      state: 'connectivity_loss' | 'hardware_fault' | 'power_loss',
      deficit: number,
    ) => ({
      site: 'farm-a',
      host: 'host-1',
      rig,
      ts,
      duration_ms: 10_000,
      state,
      expected_hs: 100,
      actual_hs: 100 - deficit / 10,
      deficit_hashes: deficit,
      energy_j: null,
    });
    applyDiagnosis(
      store,
      {
        changes: [],
        incidents: [],
        retractions: [],
        rows: [
          row('rig-01', now - 30_000, 'connectivity_loss', 500),
          row('rig-02', now - 30_000, 'hardware_fault', 300),
          row('rig-01', now - 20_000, 'connectivity_loss', 200),
          row('rig-01', now - 2 * DAY, 'power_loss', 999),
          // straddles the window's start: half of it counts
          row('rig-02', now - DAY - 5_000, 'hardware_fault', 100),
        ],
      },
      now,
    );
    const a = attribution(store, { fromMs: now - DAY, toMs: now, site: 'farm-a' });
    expect(a.total_deficit_hashes).toBe(1050);
    expect(a.by_cause).toEqual([
      { cause: 'connectivity_loss', deficit_hashes: 700, share: 700 / 1050 },
      { cause: 'hardware_fault', deficit_hashes: 350, share: 350 / 1050 },
    ]);
  });

  it('applies a batch of outcomes in one transaction, rolling back only the one that fails', () => {
    store = open();
    const now = Date.now();
    store.ensureHost('farm-a', 'host-1', now);
    const row = (rig: string, ts: number) => ({
      site: 'farm-a',
      host: 'host-1',
      rig,
      ts,
      duration_ms: 10_000,
      state: 'hardware_fault' as const,
      expected_hs: 100,
      actual_hs: 0,
      deficit_hashes: 1000,
      energy_j: null,
    });
    const empty = { changes: [], incidents: [], retractions: [] };
    // The second outcome's rows are written before its site-scoped change fails on an unknown site:
    // its savepoint must take those rows back with it.
    const failing = {
      ...empty,
      rows: [row('rig-02', now - 10_000)],
      changes: [
        {
          scope: 'site' as const,
          id: 'no-such-site',
          site: 'no-such-site',
          from: 'ok' as const,
          to: 'unknown' as const,
          sinceMs: now,
          atMs: now,
          evidence: [],
        },
      ],
    };
    const failed = applyDiagnoses(
      store,
      [{ ...empty, rows: [row('rig-01', now - 10_000)] }, failing, { ...empty, rows: [row('rig-03', now - 10_000)] }],
      now,
    );
    expect(failed.map((f) => f.outcome)).toEqual([failing]);
    expect(failed[0]?.error.message).toMatch(/no-such-site/);
    const rigs = store.db
      .prepare('SELECT r.name FROM accounting a JOIN rigs r ON r.id = a.rig_id ORDER BY r.name')
      .all()
      .map((r) => (r as { name: string }).name);
    expect(rigs).toEqual(['rig-01', 'rig-03']);
  });
});
