import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { agentTopic, EXAMPLE_BOOT_ID, exampleBirth, exampleReport, exampleState } from '@hashwatch/protocol';
import Database from 'better-sqlite3';
import type { MqttClient } from 'mqtt';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AedesTestTransport, waitFor } from '../../test/helpers/aedes-transport.js';
import { Store, type StoreOptions } from '../store/store.js';
import { type CommittedReport, Ingest, type IngestOptions } from './ingest.js';

const SITE = 'farm-a';
const HOST = 'host-1';
const options: IngestOptions = {
  batchMaxMs: 20,
  batchMaxSamples: 10_000,
  skewThresholdMs: 120_000,
  dedupeCacheSize: 1000,
  resendMinIntervalMs: 60_000,
  rebirthMinIntervalMs: 60_000,
  rejectLogIntervalMs: 300_000,
};

let dir: string;
let dbPath: string;
let store: Store;
let transport: AedesTestTransport;
let ingest: Ingest;
let committed: CommittedReport[];
let clients: MqttClient[];
let logLines: Array<{ msg: string; code?: string; source?: string }>;

async function setup(opts: Partial<IngestOptions> = {}, storeOpts: Partial<StoreOptions> = {}) {
  store = new Store({ path: dbPath, busyTimeoutMs: 2000, cacheSizeMiB: 8, checkpointPages: 1000, ...storeOpts });
  store.open();
  transport = new AedesTestTransport();
  ingest = new Ingest(
    { ...options, ...opts },
    {
      store,
      publish: (t, p, o) => transport.publish(t, p, o),
      log: pino({ level: 'info' }, { write: (line: string) => logLines.push(JSON.parse(line)) }),
    },
  );
  committed = [];
  ingest.onCommitted((r) => committed.push(...r));
  transport.onMessage(ingest.handle);
  ingest.start();
  await transport.start();
}

async function agent() {
  const a = await transport.agent(SITE, HOST);
  clients.push(a.client);
  return a;
}

function publish(client: MqttClient, kind: 'birth' | 'state' | 'report', body: unknown) {
  return client.publishAsync(agentTopic(SITE, HOST, kind), typeof body === 'string' ? body : JSON.stringify(body), {
    qos: 1,
  });
}

function sumOf(counts: Record<string, number>): number {
  return Object.values(counts).reduce((a, b) => a + b, 0);
}

function countRows(table: string): number {
  const db = new Database(dbPath, { readonly: true });
  try {
    return (db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;
  } finally {
    db.close();
  }
}

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hw-ingest-'));
  dbPath = path.join(dir, 'hw.db');
  clients = [];
  logLines = [];
});

afterEach(async () => {
  for (const c of clients) await c.endAsync(true);
  await ingest.stop();
  await transport.stop();
  await store.closeWriter();
  store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('ingest over a real broker', () => {
  it('stores a report once and acks only after it is readable from a second connection', async () => {
    await setup();
    const { client, messages } = await agent();
    const seenAtAck: number[] = [];
    client.on('message', (topic) => {
      if (topic.endsWith('/ack')) seenAtAck.push(countRows('reports'));
    });
    await publish(client, 'birth', exampleBirth(Date.now()));
    await publish(client, 'report', exampleReport(Date.now(), 2, 0));
    await waitFor(() => messages.some((m) => m.topic.endsWith('/ack')), 'the ack');
    expect(seenAtAck[0]).toBe(1);
    const ack = messages.find((m) => m.topic.endsWith('/ack'))?.body;
    expect(ack.acks).toEqual([{ boot_id: EXAMPLE_BOOT_ID, ranges: [[0, 0]] }]);
    expect(countRows('samples')).toBe(2);
    expect(committed).toHaveLength(1);
    expect(committed[0]?.site).toBe(SITE);
  });

  it('stores a duplicate once and re-acks it, also after a restart (DB unique key)', async () => {
    await setup();
    const { client, messages } = await agent();
    await publish(client, 'birth', exampleBirth(Date.now()));
    const report = exampleReport(Date.now(), 3, 5);
    await publish(client, 'report', report);
    await waitFor(() => messages.some((m) => m.topic.endsWith('/ack')), 'the first ack');
    await publish(client, 'report', report);
    await waitFor(() => messages.filter((m) => m.topic.endsWith('/ack')).length >= 2, 'the re-ack');
    expect(messages.filter((m) => m.topic.endsWith('/ack'))[1]?.body.acks[0].ranges).toEqual([[5, 5]]);
    expect(countRows('samples')).toBe(3);
    expect(ingest.stats().duplicates).toBe(1);

    // a fresh ingest (empty in-memory cache) meets the same report: the DB's unique key catches it
    for (const c of clients.splice(0)) await c.endAsync(true);
    await ingest.stop();
    await transport.stop();
    store.close();
    await setup();
    const again = await agent();
    await publish(again.client, 'report', report);
    await waitFor(() => again.messages.some((m) => m.topic.endsWith('/ack')), 'the re-ack');
    expect(again.messages.find((m) => m.topic.endsWith('/ack'))?.body.acks[0].ranges).toEqual([[5, 5]]);
    expect(countRows('samples')).toBe(3);
    expect(ingest.stats().duplicates).toBe(1);
  });

  it('rejects bad payloads by reason without storing anything', async () => {
    await setup();
    const { client, messages } = await agent();
    const now = Date.now();
    await publish(client, 'report', '{not json');
    await publish(client, 'report', JSON.stringify({ ...exampleReport(now), v: 2 }));
    await publish(client, 'report', JSON.stringify({ ...exampleReport(now), surprise: 1 }));
    await publish(client, 'report', JSON.stringify(exampleReport(now + 3 * 86_400_000)));
    await client.publishAsync('hw/v1/Bad..Site/host-1/report', JSON.stringify(exampleReport(now)), { qos: 1 });
    await client.publishAsync(`hw/v1/${SITE}/${HOST}/report`, '', { qos: 1 });
    await waitFor(() => Object.values(ingest.stats().rejected).reduce((a, b) => a + b, 0) >= 5, 'rejections');
    const rejected = ingest.stats().rejected;
    expect(rejected.HW_ERR_MALFORMED_JSON).toBe(1);
    expect(rejected.HW_ERR_UNSUPPORTED_VERSION).toBe(1);
    expect(rejected.HW_ERR_SCHEMA).toBe(1);
    expect(rejected.HW_ERR_TS_OUT_OF_RANGE).toBe(1);
    expect(countRows('reports')).toBe(0);
    expect(countRows('samples')).toBe(0);
    expect(messages.filter((m) => m.topic.endsWith('/ack'))).toHaveLength(0);
    // logged once per (code, source) per window, however often it repeats
    await publish(client, 'report', '{not json either');
    await waitFor(() => ingest.stats().rejected.HW_ERR_MALFORMED_JSON === 2, 'the repeat');
    const logged = logLines.filter((l) => l.msg === 'Rejected a message' && l.code === 'HW_ERR_MALFORMED_JSON');
    expect(logged).toEqual([expect.objectContaining({ source: `${SITE}/${HOST}` })]);
  });

  it('ignores a stale Will that arrives after the agent reconnected', async () => {
    await setup();
    const { client } = await agent();
    const now = Date.now();
    await publish(client, 'birth', { ...exampleBirth(now), conn: 2 });
    await publish(client, 'state', { ...exampleState(now), conn: 2, status: 'online', reason: undefined });
    // the Will of connection 1, delivered late
    await publish(client, 'state', { ...exampleState(now - 5000), conn: 1, status: 'offline', reason: 'lost' });
    await waitFor(() => ingest.stats().staleStatesIgnored === 1, 'the stale Will to be ignored');
    expect(ingest.session(SITE, HOST)?.status).toBe('online');
    // the Will of the current connection counts
    await publish(client, 'state', { ...exampleState(now + 1000), conn: 2, status: 'offline', reason: 'lost' });
    await waitFor(() => ingest.session(SITE, HOST)?.status === 'offline', 'offline');
  });

  it("applies an agent's clean stop after the reports it sent before it, not ahead of them", async () => {
    // A batch waits up to batch_max_ms to commit; a state applied at once overtook the agent's last
    // reports, and the diagnosis then saw them arrive from a host it had just marked stopped.
    await setup({ batchMaxMs: 300 });
    const events: string[] = [];
    ingest.onCommitted((reports) => {
      for (const r of reports) events.push(`report ${r.report.seq}`);
    });
    ingest.onPresence((c) => events.push(`presence ${c.session.status}`));
    const { client } = await agent();
    const now = Date.now();
    await publish(client, 'birth', exampleBirth(now));
    await publish(client, 'state', { ...exampleState(now), status: 'online', reason: undefined });
    await waitFor(() => events.includes('presence online'), 'online');
    await publish(client, 'report', exampleReport(now, 1, 0));
    await publish(client, 'report', exampleReport(now + 10_000, 1, 1));
    await publish(client, 'state', { ...exampleState(now + 10_500), status: 'offline', reason: 'shutdown' });
    await waitFor(() => events.includes('presence offline'), 'offline');
    expect(events).toEqual(['presence online', 'report 0', 'report 1', 'presence offline']);
    expect(ingest.session(SITE, HOST)?.status).toBe('offline');
  });

  it('commits what arrived during a commit right after it, without waiting out batch_max_ms', async () => {
    // Group commit: the timer paces an idle writer only. A report that waited for the previous
    // commit must not then also wait the full batch window (a minute here) for its own.
    await setup({ batchMaxMs: 60_000, batchMaxSamples: 2 });
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const commit = store.commit.bind(store);
    store.commit = async (reports) => {
      await gate;
      return commit(reports);
    };
    const { client, messages } = await agent();
    const acked = (seq: number) =>
      messages.some(
        (m) =>
          m.topic.endsWith('/ack') &&
          m.body.acks.some((a: { ranges: Array<[number, number]> }) =>
            a.ranges.some(([lo, hi]) => lo <= seq && seq <= hi),
          ),
      );
    const now = Date.now();
    await publish(client, 'birth', exampleBirth(now));
    await publish(client, 'report', exampleReport(now, 2, 0)); // fills a batch: its commit starts, held
    await publish(client, 'report', exampleReport(now + 10_000, 1, 1)); // waits in the next batch
    await waitFor(() => ingest.stats().pendingReports === 1, 'the second report to wait in the next batch');
    expect(acked(0)).toBe(false);
    release();
    await waitFor(() => acked(0) && acked(1), 'both acks');
    expect(ingest.stats().batches).toBe(2);
    expect(countRows('samples')).toBe(3);
  });

  it('logs a commit that keeps failing once per window, counts every failure, and acks nothing', async () => {
    await setup();
    store.commit = async () => {
      throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
    };
    const { client, messages } = await agent();
    const now = Date.now();
    await publish(client, 'birth', exampleBirth(now));
    for (let seq = 0; seq < 3; seq++) {
      await publish(client, 'report', exampleReport(now + seq * 10_000, 1, seq));
      await waitFor(() => ingest.stats().batches + sumOf(ingest.stats().commitFailures) > seq, `commit ${seq}`);
    }
    expect(sumOf(ingest.stats().commitFailures)).toBe(3);
    expect(logLines.filter((l) => l.msg === 'Batch commit failed: not acked')).toHaveLength(1);
    expect(messages.some((m) => m.topic.endsWith('/ack'))).toBe(false);
  });

  it('asks for a resend on a seq gap, flags skew, stores historical reports at their own ts', async () => {
    await setup();
    const { client, messages } = await agent();
    const now = Date.now();
    await publish(client, 'birth', exampleBirth(now));
    await publish(client, 'report', exampleReport(now, 1, 10));
    await publish(client, 'report', exampleReport(now, 1, 14));
    await waitFor(() => messages.some((m) => m.topic.endsWith('/cmd')), 'the resend command');
    expect(messages.find((m) => m.topic.endsWith('/cmd'))?.body).toMatchObject({
      cmd: 'resend',
      boot_id: EXAMPLE_BOOT_ID,
      from_seq: 11,
      to_seq: 13,
    });
    // a live report stamped 10 minutes ago: skewed
    await publish(client, 'report', exampleReport(now - 600_000, 1, 15));
    // a historical one from two days ago: not skewed, stored at its own ts
    const old = now - 2 * 86_400_000;
    await publish(client, 'report', { ...exampleReport(old, 1, 3), historical: true });
    await waitFor(() => ingest.stats().reportsStored === 4, 'four reports stored');
    expect(ingest.stats().skewed).toBe(1);
    const db = new Database(dbPath, { readonly: true });
    const rows = db.prepare('SELECT seq, ts, historical, skewed FROM reports ORDER BY seq').all();
    const sampleTs = db
      .prepare('SELECT s.ts FROM samples s JOIN reports r ON r.id = s.report_id WHERE r.seq = 3')
      .get();
    db.close();
    expect(rows).toContainEqual({ seq: 15, ts: now - 600_000, historical: 0, skewed: 1 });
    expect(rows).toContainEqual({ seq: 3, ts: old, historical: 1, skewed: 0 });
    expect(sampleTs).toEqual({ ts: old });
    // the historical report does not count as a gap
    expect(messages.filter((m) => m.topic.endsWith('/cmd') && m.body.cmd === 'resend')).toHaveLength(1);
  });

  it('stores a report from an unknown host and asks it for a rebirth', async () => {
    await setup();
    const { client, messages } = await agent();
    await publish(client, 'report', exampleReport(Date.now(), 1, 0));
    await waitFor(() => messages.some((m) => m.topic.endsWith('/cmd')), 'the rebirth command');
    expect(messages.find((m) => m.topic.endsWith('/cmd'))?.body.cmd).toBe('rebirth');
    await waitFor(() => messages.some((m) => m.topic.endsWith('/ack')), 'the ack');
    expect(countRows('reports')).toBe(1);
  });

  it('acks nothing when the commit fails (disk full), and recovers', async () => {
    await setup();
    const { client, messages } = await agent();
    await publish(client, 'birth', exampleBirth(Date.now()));
    const pages = store.db.pragma('page_count', { simple: true }) as number;
    store.db.pragma(`max_page_count = ${pages}`);
    await publish(client, 'report', exampleReport(Date.now(), 200, 0));
    await waitFor(() => (ingest.stats().commitFailures.HW_ERR_STORE_FULL ?? 0) === 1, 'a commit failure');
    await new Promise((r) => setTimeout(r, 100));
    expect(messages.filter((m) => m.topic.endsWith('/ack'))).toHaveLength(0);
    expect(countRows('reports')).toBe(0);
    // space again: the agent's resend is stored and acked
    store.db.pragma('max_page_count = 1073741823');
    await publish(client, 'report', exampleReport(Date.now(), 200, 0));
    await waitFor(() => messages.some((m) => m.topic.endsWith('/ack')), 'the ack after recovery');
    expect(countRows('samples')).toBe(200);
  });

  it('does not ack the second copy of a report in a batch whose commit failed', async () => {
    // Found by the fault suite: a copy that arrived while the first waited in the batch was acked
    // as a duplicate even though the first never reached the disk.
    await setup({ batchMaxMs: 300 });
    const { client, messages } = await agent();
    await publish(client, 'birth', exampleBirth(Date.now()));
    const pages = store.db.pragma('page_count', { simple: true }) as number;
    store.db.pragma(`max_page_count = ${pages}`);
    const report = exampleReport(Date.now(), 200, 0);
    await Promise.all([publish(client, 'report', report), publish(client, 'report', report)]);
    await waitFor(() => (ingest.stats().commitFailures.HW_ERR_STORE_FULL ?? 0) === 1, 'a commit failure');
    await new Promise((r) => setTimeout(r, 400));
    expect(ingest.stats().duplicates).toBe(1);
    expect(messages.filter((m) => m.topic.endsWith('/ack'))).toHaveLength(0);
    expect(countRows('reports')).toBe(0);
    store.db.pragma('max_page_count = 1073741823');
  });

  it('acks a copy that arrived while its batch was on the writer thread only once it is stored', async () => {
    // The copy is taken as new and batched behind: the database's key then tells whether the first
    // commit stored it (a duplicate, re-acked) or failed (the copy is stored). Here the first fails.
    await setup({}, { writerThread: true, busyTimeoutMs: 500 });
    const { client, messages } = await agent();
    await publish(client, 'birth', exampleBirth(Date.now()));
    const report = exampleReport(Date.now(), 50, 0);
    const other = new Database(dbPath);
    other.prepare('BEGIN IMMEDIATE').run();
    let locked = true;
    try {
      const first = publish(client, 'report', report);
      await new Promise((r) => setTimeout(r, 150)); // the first batch now waits on the lock
      const copy = publish(client, 'report', report);
      await waitFor(() => (ingest.stats().commitFailures.HW_ERR_STORE_BUSY ?? 0) === 1, 'the first commit to fail');
      expect(messages.filter((m) => m.topic.endsWith('/ack'))).toHaveLength(0);
      other.prepare('ROLLBACK').run();
      locked = false;
      await Promise.all([first, copy]);
    } finally {
      if (locked) other.prepare('ROLLBACK').run();
      other.close();
    }
    await waitFor(() => messages.some((m) => m.topic.endsWith('/ack')), 'the ack of the stored copy');
    expect(countRows('reports')).toBe(1);
    expect(countRows('samples')).toBe(50);
    expect(ingest.stats()).toMatchObject({ reportsStored: 1, duplicates: 0 });
  });

  it('re-acks a copy that arrived while its original was being written, counting each message once', async () => {
    await setup({}, { writerThread: true });
    const { client, messages } = await agent();
    await publish(client, 'birth', exampleBirth(Date.now()));
    const report = exampleReport(Date.now(), 50, 0);
    const other = new Database(dbPath);
    other.prepare('BEGIN IMMEDIATE').run();
    try {
      void publish(client, 'report', report);
      await new Promise((r) => setTimeout(r, 150)); // the first batch now waits on the lock
      void publish(client, 'report', report);
      await new Promise((r) => setTimeout(r, 150));
    } finally {
      other.prepare('ROLLBACK').run();
      other.close();
    }
    await waitFor(() => messages.filter((m) => m.topic.endsWith('/ack')).length === 2, 'an ack for each copy');
    expect(countRows('reports')).toBe(1);
    expect(countRows('samples')).toBe(50);
    expect(ingest.stats()).toMatchObject({ reportsStored: 1, duplicates: 1 });
  });
});
