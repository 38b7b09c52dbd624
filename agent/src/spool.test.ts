import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from './log.js';
import { packPayload, Spool, type SpoolOptions, type SpoolRow } from './spool.js';

const T0 = Date.UTC(2026, 0, 1);
let dir: string;
const open: Spool[] = [];

function makeSpool(over: Partial<SpoolOptions> = {}): Spool {
  const spool = new Spool({
    dir,
    maxBytes: 1_000_000,
    maxAgeMs: 3600_000,
    memoryMaxReports: 10,
    log: silentLogger(),
    ...over,
  });
  open.push(spool);
  return spool;
}

function row(bootId: string, seq: number, ts = T0 + seq * 1000, size = 100): SpoolRow {
  const payload = JSON.stringify({ boot_id: bootId, seq, pad: 'x'.repeat(Math.max(0, size - 40)) });
  return { bootId, seq, ts, size: Buffer.byteLength(payload), payload };
}

/** A row whose padding barely compresses (a seeded byte stream): byte bounds bite after a few rows. */
function noisyRow(bootId: string, seq: number, ts: number, size: number): SpoolRow {
  let x = seq * 7919 + 1;
  let pad = '';
  while (pad.length < size) {
    x = (x * 1103515245 + 12345) % 2147483648;
    pad += String.fromCharCode(33 + (x % 90));
  }
  const payload = JSON.stringify({ boot_id: bootId, seq, pad: pad.replaceAll('\\', '/').replaceAll('"', "'") });
  return { bootId, seq, ts, size: Buffer.byteLength(payload), payload };
}

const BOOT_A = 'aaaaaaaa-0000-4000-8000-000000000001';
const BOOT_B = 'bbbbbbbb-0000-4000-8000-000000000002';

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'hw-spool-'));
});
afterEach(() => {
  for (const s of open.splice(0)) s.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('Spool', () => {
  it('appends, replays oldest first, and deletes exactly the acked ranges', () => {
    const spool = makeSpool();
    expect(spool.open(BOOT_A, T0)).toBe(0);
    for (let seq = 0; seq < 6; seq++) expect(spool.append(row(BOOT_A, seq), T0 + seq * 1000)).toBe('disk');
    expect(spool.depth()).toBe(6);
    expect(spool.oldestTs()).toBe(T0);
    expect(spool.nextBatch(3, 0).map((r) => r.seq)).toEqual([0, 1, 2]);

    const ackedTs = spool.ack(BOOT_A, [
      [0, 1],
      [4, 4],
    ]);
    expect(ackedTs.sort()).toEqual([T0, T0 + 1000, T0 + 4000]);
    expect(spool.nextBatch(10, 0).map((r) => r.seq)).toEqual([2, 3, 5]);
    expect(spool.depth()).toBe(3);
    // An ack for another boot or for rows already gone changes nothing.
    expect(spool.ack(BOOT_B, [[0, 100]])).toEqual([]);
    expect(spool.ack(BOOT_A, [[0, 1]])).toEqual([]);
    expect(spool.depth()).toBe(3);
    expect(spool.oldestTs()).toBe(T0 + 2000);
  });

  it('tracks send state: sent rows are not due until the ack timeout, a reset or a resend', () => {
    const spool = makeSpool();
    spool.open(BOOT_A, T0);
    for (let seq = 0; seq < 4; seq++) spool.append(row(BOOT_A, seq), T0);
    const first = spool.nextBatch(2, T0 - 60_000);
    spool.markSent(first, T0);
    expect(spool.inflight(T0 - 60_000)).toBe(2);
    expect(spool.nextBatch(10, T0 - 60_000).map((r) => r.seq)).toEqual([2, 3]);
    // Ack timeout passed: the unacked ones are due again.
    expect(spool.nextBatch(10, T0 + 1).map((r) => r.seq)).toEqual([0, 1, 2, 3]);
    spool.markSent(spool.nextBatch(10, T0 + 1), T0 + 10);
    expect(spool.nextBatch(10, 0)).toEqual([]);
    expect(spool.markResend(BOOT_A, 1, 2)).toBe(2);
    expect(spool.nextBatch(10, 0).map((r) => r.seq)).toEqual([1, 2]);
    spool.resetSent();
    expect(spool.nextBatch(10, 0).map((r) => r.seq)).toEqual([0, 1, 2, 3]);
    expect(spool.inflight(0)).toBe(0);
  });

  it('keeps unacked rows across a restart; a new boot_id starts at seq 0, and rows are due again', () => {
    const first = makeSpool();
    first.open(BOOT_A, T0);
    for (let seq = 0; seq < 3; seq++) first.append(row(BOOT_A, seq), T0);
    first.markSent(first.nextBatch(3, 0), T0);
    first.ack(BOOT_A, [[1, 1]]);
    first.close();

    const second = makeSpool();
    expect(second.open(BOOT_B, T0 + 5000)).toBe(0);
    expect(second.depth()).toBe(2);
    second.append(row(BOOT_B, 0, T0 + 5000), T0 + 5000);
    // Sent-but-unacked rows of the old process are due again, in their original order, after
    // this boot's own report.
    expect(second.nextBatch(10, 0).map((r) => `${r.bootId.slice(0, 1)}${r.seq}`)).toEqual(['b0', 'a0', 'a2']);
    second.close();

    // Reopening with a boot id that has rows continues after its highest seq: never a reused key.
    const third = makeSpool();
    expect(third.open(BOOT_B, T0 + 6000)).toBe(1);
  });

  it("puts this boot's reports ahead of an older boot's backlog, and still replays that backlog in order", () => {
    const before = makeSpool();
    before.open(BOOT_A, T0);
    for (let seq = 0; seq < 200; seq++) before.append(row(BOOT_A, seq, T0 + seq * 1000), T0 + seq * 1000);
    before.close();

    // A restart: the new boot's first reports are spooled before the connection is up.
    const now = T0 + 600_000;
    const spool = makeSpool();
    spool.open(BOOT_B, now);
    spool.append(row(BOOT_B, 0, now), now);
    spool.append(row(BOOT_B, 1, now + 1000), now + 1000);
    const key = (r: SpoolRow) => `${r.bootId.slice(0, 1)}${r.seq}`;
    // The first pump tick after connecting has room for one report: it is the new boot's.
    expect(spool.nextBatch(1, 0).map(key)).toEqual(['b0']);
    expect(spool.nextBatch(4, 0).map(key)).toEqual(['b0', 'b1', 'a0', 'a1']);

    // Replaying the whole backlog in batches (acked as it goes) visits every old row once, in order.
    const order: string[] = [];
    for (let batch = spool.nextBatch(7, now); batch.length > 0; batch = spool.nextBatch(7, now)) {
      spool.markSent(batch, now + 1);
      order.push(...batch.map(key));
      for (const r of batch) spool.ack(r.bootId, [[r.seq, r.seq]]);
      // A report of this boot that comes up mid-replay (its ack timed out) overtakes the rest.
      if (order.length === 70) spool.append(row(BOOT_B, 2, now + 2000), now + 2000);
    }
    expect(order.slice(0, 2)).toEqual(['b0', 'b1']);
    const old = order.filter((k) => k.startsWith('a'));
    expect(old).toEqual(Array.from({ length: 200 }, (_, seq) => `a${seq}`));
    expect(order.indexOf('b2')).toBe(70);
    expect(spool.depth()).toBe(0);
  });

  it("puts this boot's reports held in memory ahead of an older boot's backlog too", () => {
    const before = makeSpool();
    before.open(BOOT_A, T0);
    for (let seq = 0; seq < 3; seq++) before.append(row(BOOT_A, seq), T0);
    before.close();
    // The disk fills up right after the restart: the new boot's reports stay in memory.
    const spool = makeSpool({ maxPageCount: 8, memoryMaxReports: 5 });
    spool.open(BOOT_B, T0 + 5000);
    for (let seq = 0; seq < 4; seq++) spool.append(noisyRow(BOOT_B, seq, T0 + 5000, 8000), T0 + 5000);
    expect(spool.memoryDepth()).toBeGreaterThan(0);
    const order = spool.nextBatch(100, 0).map((r) => `${r.bootId.slice(0, 1)}${r.seq}`);
    expect(order).toEqual(['b0', 'b1', 'b2', 'b3', 'a0', 'a1', 'a2']);
  });

  it('drops the oldest rows past max_bytes, counts them, and keeps the counter across restarts', () => {
    const spool = makeSpool({ maxBytes: 1000 });
    spool.open(BOOT_A, T0);
    for (let seq = 0; seq < 25; seq++) spool.append(noisyRow(BOOT_A, seq, T0, 200), T0);
    expect(spool.bytes()).toBeLessThanOrEqual(1000);
    // The bound counts stored (deflated) bytes: exactly as many newest rows as fit are kept.
    const storedSizes = Array.from(
      { length: 25 },
      (_, seq) => packPayload(noisyRow(BOOT_A, seq, T0, 200).payload).length,
    );
    let fit = 0;
    for (let total = 0, i = 24; i >= 0 && total + (storedSizes[i] as number) <= 1000; i--) {
      total += storedSizes[i] as number;
      fit++;
    }
    expect(spool.depth()).toBe(fit);
    const kept = spool.nextBatch(100, 0).map((r) => r.seq);
    expect(kept[kept.length - 1]).toBe(24);
    expect(kept).toEqual([...kept].sort((a, b) => a - b));
    expect(spool.dropped()).toBe(25 - kept.length);
    expect(spool.errorCounts().spool_dropped_bytes).toBe(25 - kept.length);
    const dropped = spool.dropped();
    spool.close();
    const again = makeSpool({ maxBytes: 1000 });
    again.open(BOOT_B, T0);
    expect(again.dropped()).toBe(dropped);
  });

  it('stores payloads deflated and gives back the exact text', () => {
    const spool = makeSpool();
    spool.open(BOOT_A, T0);
    const payload = JSON.stringify({
      boot_id: BOOT_A,
      seq: 0,
      rigs: Array(200).fill({ model: 'Antminer S19 Pro', temp_c: 67.5 }),
      note: 'Ekibastuz – ёмкость ✓',
    });
    spool.append({ bootId: BOOT_A, seq: 0, ts: T0, size: Buffer.byteLength(payload), payload }, T0);
    expect(spool.nextBatch(1, 0)[0]?.payload).toBe(payload);
    expect(spool.bytes()).toBeLessThan(Buffer.byteLength(payload) / 10);
    spool.close();
    const db = new Database(spool.path, { readonly: true });
    const stored = db.prepare('SELECT payload, size FROM spool').get() as { payload: unknown; size: number };
    db.close();
    expect(Buffer.isBuffer(stored.payload)).toBe(true);
    expect(stored.size).toBe((stored.payload as Buffer).length);
  });

  it('replays rows an older agent stored as plain text', () => {
    const first = makeSpool();
    first.open(BOOT_A, T0);
    first.close();
    const db = new Database(first.path);
    const old = row(BOOT_A, 0);
    db.prepare('INSERT INTO spool (boot_id, seq, ts, size, payload, sent_ms) VALUES (?, ?, ?, ?, ?, NULL)').run(
      old.bootId,
      old.seq,
      old.ts,
      old.size,
      old.payload,
    );
    db.close();
    const spool = makeSpool();
    spool.open(BOOT_B, T0);
    spool.append(row(BOOT_B, 0), T0);
    expect(spool.nextBatch(10, 0).map((r) => r.payload)).toEqual([row(BOOT_B, 0).payload, old.payload]);
    expect(spool.bytes()).toBe(old.size + packPayload(row(BOOT_B, 0).payload).length);
  });

  it('drops a damaged row, counts and names it, and replays the rows after it', () => {
    const spool = makeSpool();
    spool.open(BOOT_A, T0);
    for (let seq = 0; seq < 3; seq++) spool.append(row(BOOT_A, seq), T0);
    const db = new Database(spool.path);
    db.prepare('UPDATE spool SET payload = ? WHERE seq = 1').run(Buffer.from([0xff, 0xfe, 0x00, 0x13]));
    db.close();
    expect(spool.nextBatch(10, 0).map((r) => r.seq)).toEqual([0, 2]);
    expect(spool.errorCounts().spool_dropped_corrupt).toBe(1);
    expect(spool.dropped()).toBe(1);
    expect(spool.depth()).toBe(2);
    expect(spool.nextBatch(10, 0).map((r) => r.seq)).toEqual([0, 2]);
  });

  it('drops rows older than max_age', () => {
    const spool = makeSpool({ maxAgeMs: 10_000 });
    spool.open(BOOT_A, T0);
    for (let seq = 0; seq < 5; seq++) spool.append(row(BOOT_A, seq, T0 + seq * 5000), T0 + seq * 5000);
    // At T0+20s, rows with ts < T0+10s are gone.
    expect(spool.nextBatch(10, 0).map((r) => r.seq)).toEqual([2, 3, 4]);
    expect(spool.errorCounts().spool_dropped_age).toBe(2);
    expect(spool.dropped()).toBe(2);
  });

  it('survives a full disk: keeps reports in bounded memory, counts it, and flushes when space returns', () => {
    // max_page_count makes SQLite answer SQLITE_FULL, exactly as a full disk does.
    const spool = makeSpool({ maxPageCount: 40, memoryMaxReports: 5 });
    spool.open(BOOT_A, T0);
    const outcomes = new Set<string>();
    let seq = 0;
    for (; seq < 200; seq++) outcomes.add(spool.append(noisyRow(BOOT_A, seq, T0, 2000), T0));
    expect(outcomes.has('memory')).toBe(true);
    expect(spool.errorCounts().spool_disk_full).toBeGreaterThan(0);
    expect(spool.memoryDepth()).toBe(5);
    expect(spool.errorCounts().spool_dropped_memory).toBeGreaterThan(0);
    // Memory rows replay after the disk rows, and can be acked.
    const all = spool.nextBatch(1000, 0).map((r) => r.seq);
    expect(all.slice(-5)).toEqual([195, 196, 197, 198, 199]);
    const diskSeqs = all.slice(0, -5);
    // Free space by acking everything on disk: the memory rows move to disk on the next append.
    spool.ack(BOOT_A, [[0, diskSeqs[diskSeqs.length - 1] ?? 0]]);
    expect(spool.append(noisyRow(BOOT_A, seq, T0, 2000), T0)).toBe('disk');
    expect(spool.memoryDepth()).toBe(0);
    expect(spool.nextBatch(1000, 0).map((r) => r.seq)).toEqual([195, 196, 197, 198, 199, 200]);
  });

  it('runs from memory when the data dir cannot be used, without throwing', () => {
    // A regular file where the directory should be: mkdir fails with ENOTDIR, like a bad data_dir.
    writeFileSync(join(dir, 'not-a-dir'), '');
    const spool = makeSpool({ dir: join(dir, 'not-a-dir', 'spool'), memoryMaxReports: 3 });
    expect(spool.open(BOOT_A, T0)).toBe(0);
    for (let seq = 0; seq < 5; seq++) expect(spool.append(row(BOOT_A, seq), T0)).toBe('memory');
    expect(spool.depth()).toBe(3);
    expect(spool.nextBatch(10, 0).map((r) => r.seq)).toEqual([2, 3, 4]);
    expect(spool.ack(BOOT_A, [[2, 3]])).toHaveLength(2);
    expect(spool.depth()).toBe(1);
    expect(spool.errorCounts().spool_io_error).toBeGreaterThan(0);
  });
});
