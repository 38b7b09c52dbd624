/**
 * "Nothing lost": real agent and collector processes, real brokers, faults injected between them
 * (uplink cut, hang, delay, drops, broker restarts, kill -9 of either side, full disks, duplicate
 * and shuffled delivery). Each case checks against the agents' own truth (spool ledger + dense
 * seqs) that every report produced was stored exactly once, records a row for test/RELIABILITY.md,
 * and the independent cases run concurrently (separate ports and data dirs) to keep wall time low.
 * Needs `npx tsc -b` first (spawns agent/dist and collector/dist).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { agentTopic, exampleBirth, exampleReport } from '@hashwatch/protocol';
import Database from 'better-sqlite3';
import mqtt from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { type Mosquitto, startMosquitto } from '../../collector/test/helpers/mosquitto.js';
import { cleanupAll, sleep, tempDir, waitFor } from '../helpers/proc.js';
import { prng } from '../helpers/proxy.js';
import { readStore, Stack, type Tally, tally } from '../helpers/stack.js';
import { scrape } from '../security/metrics.js';
import { flush, record } from './results.js';
import { fillSpool } from './spool-fill.js';

const mounts: string[] = [];
const brokers: Mosquitto[] = [];

function unmount(m: string): void {
  const i = mounts.indexOf(m);
  if (i >= 0) mounts.splice(i, 1);
  try {
    execFileSync('umount', ['-l', m]);
  } catch {
    // already gone
  }
}

function unmountAll(): void {
  for (const m of [...mounts]) unmount(m);
}

afterAll(async () => {
  flush('fault');
  // Lazy unmount first: the temp dirs under the mounts can only be removed afterwards.
  unmountAll();
  await cleanupAll();
  for (const b of brokers) await b.stop().catch(() => {});
}, 60_000);

/** At most this many cases run at once: 2 cores, shared with other work. */
const SLOTS = 3;
let freeSlots = SLOTS;
const waiting: Array<() => void> = [];

/** Runs `fn` when a slot is free (the cases are concurrent, but bounded). */
async function slot<T>(fn: () => Promise<T>): Promise<T> {
  if (freeSlots === 0) await new Promise<void>((resolve) => waiting.push(resolve));
  else freeSlots--;
  try {
    return await fn();
  } finally {
    const next = waiting.shift();
    if (next) next();
    else freeSlots++;
  }
}

/** Records the row, then asserts: the table shows a failure even when the assertion throws. */
function conclude(
  fault: string,
  checked: string,
  t: Tally,
  extra: { ok?: boolean; note?: string; stack?: Stack } = {},
): void {
  const held = t.lost === 0 && t.duplicates === 0 && t.produced > 0 && (extra.ok ?? true);
  if (!held && extra.stack) extra.note = `${extra.note ? `${extra.note}; ` : ''}evidence in ${extra.stack.preserve()}`;
  record({
    group: 'fault',
    kind: 'fault',
    fault,
    checked,
    held,
    produced: t.produced,
    lost: t.lost,
    duplicates: t.duplicates,
    ...(extra.note ? { note: extra.note } : {}),
  });
  expect(t.lostKeys, `lost reports in "${fault}" (${t.stillSpooled ?? 0} of them still spooled)`).toEqual([]);
  expect(t.lost).toBe(0);
  expect(t.duplicates).toBe(0);
  expect(t.produced).toBeGreaterThan(0);
}

function reportCount(dbPath: string, historical: boolean): number {
  let db: Database.Database | undefined;
  try {
    db = new Database(dbPath, { readonly: true, fileMustExist: true });
    const row = db.prepare('SELECT count(*) AS n FROM reports WHERE historical = ?').get(historical ? 1 : 0);
    return (row as { n: number }).n;
  } catch {
    return 0; // not created yet
  } finally {
    db?.close();
  }
}

/**
 * What the diagnosis recorded for the cut, read back through the API: the hashrate deficit over
 * the cut window by cause (the accounting the backfill relabels) and the causes of the incidents
 * overlapping the window (the relabelled gap incidents).
 */
async function diagnosisAfterCut(
  stack: Stack,
  fromMs: number,
  toMs: number,
): Promise<{ causes: string[]; incidentCauses: string[] }> {
  const window = `site=${stack.site}&from=${fromMs}&to=${toMs}`;
  const attribution = await stack.collector.get(`/api/v1/attribution?${window}`);
  const incidents = await stack.collector.get(`/api/v1/incidents?${window}`);
  expect(attribution.status).toBe(200);
  expect(incidents.status).toBe(200);
  const causes = ((attribution.body as { by_cause?: { cause: string; deficit_hashes: number }[] }).by_cause ?? [])
    .filter((c) => c.deficit_hashes > 0)
    .map((c) => c.cause);
  const incidentCauses = ((incidents.body as { incidents?: { cause: string }[] }).incidents ?? []).map((i) => i.cause);
  return { causes, incidentCauses };
}

/** An uplink cut of `cutMs` between agent and broker (and the farm's internet with it). */
async function uplinkCut(name: string, cutMs: number): Promise<void> {
  const stack = await new Stack({ name, agents: 1, rigsPerAgent: 3, intervalMs: 1000, seed: cutMs }).start();
  try {
    const agent = stack.agents[0];
    const proxy = stack.proxies[0];
    const sim = stack.sims[0];
    if (!agent || !proxy || !sim) throw new Error('stack without agent');
    await agent.connected();
    // Live ones: the spool the agent built before it first connected is replayed as historical.
    await waitFor(() => reportCount(stack.collector.dbPath, false) >= 3, 'live reports before the cut', 60_000);
    const cutFromMs = Date.now();
    await Promise.all([proxy.cut(), sim.uplink.cut('refuse')]);
    const storedAtCut = stack.storedCount();
    await sleep(cutMs);
    const spooled = stack.ledger.sample();
    const storedDuringCut = stack.storedCount() - storedAtCut;
    const cutToMs = Date.now();
    await Promise.all([proxy.pass(), sim.uplink.restore()]);
    const t = await stack.drained(90_000);
    const historical = reportCount(stack.collector.dbPath, true);
    const diag = await diagnosisAfterCut(stack, cutFromMs, cutToMs);
    const diagOk =
      diag.causes.includes('connectivity_loss') &&
      !diag.causes.includes('hardware_fault') &&
      diag.incidentCauses.includes('connectivity_loss') &&
      !diag.incidentCauses.includes('hardware_fault');
    conclude(
      `uplink cut ${cutMs / 1000} s (agent↔broker and internet)`,
      `spooled while cut (${spooled}), replayed as historical (${historical}), stored once; API attribution of the cut window`,
      t,
      {
        ok: spooled >= cutMs / 1000 - 3 && historical >= cutMs / 1000 - 3 && diagOk,
        stack,
        note: `API causes: ${[...new Set(diag.causes)].join(', ') || 'none'}; incidents: ${[...new Set(diag.incidentCauses)].join(', ') || 'none'}`,
      },
    );
    expect(storedDuringCut, 'nothing can arrive through a cut uplink').toBeLessThanOrEqual(1);
    expect(spooled).toBeGreaterThanOrEqual(cutMs / 1000 - 3);
    expect(historical).toBeGreaterThanOrEqual(cutMs / 1000 - 3);
    expect(diag.causes).toContain('connectivity_loss');
    expect(diag.causes).not.toContain('hardware_fault');
    expect(diag.incidentCauses, 'the gap incident is relabelled, not lost').toContain('connectivity_loss');
    expect(diag.incidentCauses).not.toContain('hardware_fault');
  } finally {
    await stack.stop();
  }
}

describe.concurrent('faults between agent and collector', () => {
  it('uplink cut 10 s', () => slot(() => uplinkCut('cut10', 10_000)), 180_000);

  it('uplink cut 2 min (120 reports at 1 s)', () => slot(() => uplinkCut('cut120', 120_000)), 300_000);

  it(
    'a day cut off (8640 reports at 10 s) replayed on return',
    () =>
      slot(async () => {
        const stack = await new Stack({ name: 'day', agents: 0, rigsPerAgent: 3, intervalMs: 10_000 }).start();
        try {
          const dataDir = join(tempDir('day-spool'), 'data');
          mkdirSync(dataDir, { recursive: true });
          const fill = fillSpool(dataDir, 8640, 10_000, 3);
          const agent = await stack.addAgent(dataDir);
          stack.ledger.sample();
          await agent.connected();
          const t = await stack.drained(200_000);
          const historical = reportCount(stack.collector.dbPath, true);
          conclude(
            'a day cut off: 8640 reports (10 s) spooled, then the uplink returns',
            `all ${fill.reports} replayed as historical and stored once, plus live ones`,
            t,
            { ok: historical >= fill.reports, stack },
          );
          expect(historical).toBeGreaterThanOrEqual(fill.reports);
        } finally {
          await stack.stop();
        }
      }),
    300_000,
  );

  it(
    'collector kill -9 during a large backfill, agent kill -9 during replay, both at once',
    () =>
      slot(async () => {
        const stack = await new Stack({
          name: 'kill9',
          agents: 0,
          rigsPerAgent: 3,
          intervalMs: 1000,
          // Slow enough that every kill lands mid-replay.
          agentExtra: { replay: { rate_per_s: 150, max_inflight: 100, ack_timeout_ms: 5000 } },
        }).start();
        try {
          const dataDir = join(tempDir('kill9-spool'), 'data');
          mkdirSync(dataDir, { recursive: true });
          const fill = fillSpool(dataDir, 4000, 10_000, 3);
          const agent = await stack.addAgent(dataDir);
          stack.ledger.sample();
          await waitFor(() => stack.storedCount() >= 500, 'backfill under way', 60_000);
          await stack.collector.restart('kill');
          await waitFor(() => stack.storedCount() >= 1500, 'backfill after the collector kill', 150_000);
          await agent.proc.kill();
          stack.ledger.sample();
          agent.proc.start();
          await waitFor(() => stack.storedCount() >= 2500, 'backfill after the agent kill', 150_000);
          await Promise.all([agent.proc.kill(), stack.collector.proc.kill()]);
          stack.ledger.sample();
          agent.proc.start();
          stack.collector.proc.start();
          await stack.collector.ready(30_000);
          const t = await stack.drained(120_000);
          conclude(
            'kill -9: collector mid-backfill, agent mid-replay, then both at once',
            `${fill.reports} spooled + live; every acked report survives, the rest replayed`,
            t,
            { ok: agent.bootIds().length === 3, stack },
          );
          expect(agent.bootIds()).toHaveLength(3);
        } finally {
          await stack.stop();
        }
      }),
    300_000,
  );

  it(
    'embedded broker restart (collector SIGTERM and start) with two live agents',
    () =>
      slot(async () => {
        const stack = await new Stack({ name: 'brokerrestart', agents: 2, rigsPerAgent: 2, intervalMs: 1000 }).start();
        try {
          await waitFor(() => stack.storedCount() >= 6, 'live reports', 60_000);
          await stack.collector.restart('term');
          await sleep(4000);
          await stack.collector.restart('term');
          await sleep(3000);
          const t = await stack.drained(60_000);
          conclude('embedded broker restart ×2 (collector SIGTERM)', 'two agents reconnect and resend', t, { stack });
        } finally {
          await stack.stop();
        }
      }),
    180_000,
  );

  it(
    'external broker (mosquitto) restart with the collector in external mode',
    () =>
      slot(async () => {
        const mosq = await startMosquitto();
        brokers.push(mosq);
        const stack = await new Stack({
          name: 'mosq',
          agents: 2,
          rigsPerAgent: 2,
          intervalMs: 1000,
          collector: { external: { url: mosq.url, clientId: 'hw-fault-collector' } },
        }).start();
        try {
          await waitFor(() => stack.storedCount() >= 6, 'live reports through mosquitto', 30_000);
          await mosq.restart();
          await sleep(5000);
          const t = await stack.drained(90_000);
          conclude(
            'mosquitto restart (no persistence: queued messages die with it)',
            'collector and agents reconnect; agents resend what was never acked',
            t,
            { stack },
          );
        } finally {
          await stack.stop();
        }
      }),
    240_000,
  );

  it(
    'proxy delays every chunk, then drops connections at random',
    () =>
      slot(async () => {
        const stack = await new Stack({ name: 'flaky', agents: 2, rigsPerAgent: 2, intervalMs: 1000, seed: 7 }).start();
        try {
          await waitFor(() => stack.storedCount() >= 4, 'live reports', 60_000);
          for (const p of stack.proxies) await p.delay(400);
          await sleep(10_000);
          for (const p of stack.proxies) await p.drop(0.08);
          await sleep(15_000);
          for (const p of stack.proxies) await p.hang();
          await sleep(5000);
          for (const p of stack.proxies) await p.pass();
          const t = await stack.drained(90_000);
          const drops = stack.proxies.reduce((s, p) => s + p.stats.closedByFault, 0);
          conclude(
            'delay 400 ms/chunk 10 s, 8 % chunk drops 15 s (seeded), hang 5 s',
            `reconnects and resends (${drops} connections dropped)`,
            t,
            { ok: drops > 0, stack },
          );
          expect(drops).toBeGreaterThan(0);
        } finally {
          await stack.stop();
        }
      }),
    240_000,
  );

  it(
    'duplicate and out-of-order delivery from a raw MQTT publisher',
    () =>
      slot(async () => {
        const stack = await new Stack({ name: 'dupes', agents: 0 }).start();
        const client = await mqtt.connectAsync(stack.collector.mqttUrl, { reconnectPeriod: 0, connectTimeout: 5000 });
        try {
          const site = 'dupes';
          const host = 'raw-1';
          const bootId = 'raw-boot-0001';
          const n = 300;
          const acked = new Set<number>();
          client.on('message', (_topic, payload) => {
            const ack = JSON.parse(payload.toString()) as { acks: { boot_id: string; ranges: [number, number][] }[] };
            for (const a of ack.acks) for (const [from, to] of a.ranges) for (let s = from; s <= to; s++) acked.add(s);
          });
          await client.subscribeAsync(agentTopic(site, host, 'ack'), { qos: 1 });
          await client.publishAsync(
            agentTopic(site, host, 'birth'),
            JSON.stringify({ ...exampleBirth(Date.now()), boot_id: bootId }),
            { qos: 1, retain: true },
          );
          const now = Date.now();
          const payloads = Array.from({ length: n }, (_, seq) =>
            JSON.stringify({ ...exampleReport(now - (n - seq) * 1000, 3, seq), boot_id: bootId, historical: true }),
          );
          const rand = prng(42);
          const shuffled = (list: number[]) => {
            const a = [...list];
            for (let i = a.length - 1; i > 0; i--) {
              const j = Math.floor(rand() * (i + 1));
              [a[i], a[j]] = [a[j] as number, a[i] as number];
            }
            return a;
          };
          const order = [
            ...shuffled([...Array(n).keys()]),
            ...shuffled([...Array(n).keys()]),
            ...[...Array(n).keys()].reverse(),
          ];
          for (const [i, seq] of order.entries()) {
            client.publish(agentTopic(site, host, 'report'), payloads[seq] as string, { qos: i % 2 === 0 ? 1 : 0 });
            if (i % 100 === 0) await sleep(5);
          }
          await waitFor(() => acked.size === n, 'every seq acked', 30_000);
          await sleep(500);
          const view = readStore(stack.collector.dbPath);
          const produced = new Map([
            [`${site}/${host}`, new Set(Array.from({ length: n }, (_, s) => `${bootId}/${s}`))],
          ]);
          const t = tally(produced, view, [`${site}/${host}`]);
          conclude(
            `${n} reports sent 3× (two shuffles, one reversed), QoS 0/1 mixed`,
            'each stored once, every seq acked',
            t,
          );
        } finally {
          await client.endAsync();
          await stack.stop();
        }
      }),
    120_000,
  );

  it(
    'full collector disk: a report delivered twice in one batch window is not acked unless stored',
    () =>
      slot(async () => {
        const storeMount = tempDir('dup-tmpfs');
        execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', storeMount]);
        mounts.push(storeMount);
        const stack = await new Stack({
          name: 'dupfull',
          agents: 0,
          // A wide batch window: both copies of a report surely land in the same batch.
          collector: { dbPath: join(storeMount, 'hw.db'), extra: { ingest: { batch_max_ms: 200 } } },
        }).start();
        const client = await mqtt.connectAsync(stack.collector.mqttUrl, { reconnectPeriod: 0, connectTimeout: 5000 });
        try {
          const site = 'dupfull';
          const host = 'raw-1';
          const bootId = 'dupfull-boot-01';
          const acked = new Set<number>();
          client.on('message', (_topic, payload) => {
            const ack = JSON.parse(payload.toString()) as { acks: { boot_id: string; ranges: [number, number][] }[] };
            for (const a of ack.acks) for (const [from, to] of a.ranges) for (let s = from; s <= to; s++) acked.add(s);
          });
          await client.subscribeAsync(agentTopic(site, host, 'ack'), { qos: 1 });
          await client.publishAsync(
            agentTopic(site, host, 'birth'),
            JSON.stringify({ ...exampleBirth(Date.now()), boot_id: bootId }),
            { qos: 1, retain: true },
          );
          const send = (seq: number) =>
            client.publish(
              agentTopic(site, host, 'report'),
              JSON.stringify({ ...exampleReport(Date.now(), 3, seq), boot_id: bootId }),
              { qos: 0 },
            );
          send(0);
          await waitFor(() => acked.has(0), 'the first ack', 10_000);
          try {
            execFileSync('dd', ['if=/dev/zero', `of=${join(storeMount, 'filler')}`, 'bs=64k'], { stdio: 'ignore' });
          } catch {
            // ENOSPC: full
          }
          // Each report twice, back to back, until commits fail for a while (bounded).
          let seq = 1;
          let failedAt: number | undefined;
          for (; seq < 400; seq++) {
            send(seq);
            send(seq);
            await sleep(100);
            const failures = stack.collector.proc.find((l) => l.msg === 'Batch commit failed: not acked').length;
            if (failures > 0) failedAt ??= seq;
            if (failedAt !== undefined && seq >= failedAt + 10) break;
          }
          await sleep(1000);
          rmSync(join(storeMount, 'filler'));
          await sleep(1000);
          const stored = readStore(stack.collector.dbPath).reports.get(`${site}/${host}`) ?? new Set<string>();
          const ackedNotStored = [...acked].filter((s) => !stored.has(`${bootId}/${s}`));
          record({
            group: 'fault',
            kind: 'fault',
            fault: 'collector disk full while each report arrives twice in one batch window',
            checked: `no ack for a report that is not stored (commits failing from seq ${failedAt})`,
            held: failedAt !== undefined && ackedNotStored.length === 0,
            produced: seq + 1,
            lost: ackedNotStored.length,
            duplicates: 0,
            ...(ackedNotStored.length > 0
              ? { note: `acked but not stored: seqs ${ackedNotStored.slice(0, 10).join(', ')}` }
              : {}),
          });
          expect(failedAt, 'the full disk made commits fail').toBeDefined();
          expect(ackedNotStored, 'acked but never stored: the agent would delete these from its spool').toEqual([]);
        } finally {
          await client.endAsync(true);
          await stack.stop();
          unmount(storeMount);
        }
      }),
    120_000,
  );

  it(
    'disk full under the agent spool and under the collector database',
    () =>
      slot(async () => {
        // tmpfs needs root (these tests run as root in CI and here); anything else fails loudly.
        const agentMount = tempDir('spool-tmpfs');
        const storeMount = tempDir('store-tmpfs');
        execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', agentMount]);
        mounts.push(agentMount);
        execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', storeMount]);
        mounts.push(storeMount);
        const stack = await new Stack({
          name: 'diskfull',
          agents: 0,
          rigsPerAgent: 3,
          intervalMs: 1000,
          collector: { dbPath: join(storeMount, 'hw.db') },
        }).start();
        const fill = (dir: string) => {
          // Fill the file system to the last byte: dd stops with ENOSPC, which is the point.
          try {
            execFileSync('dd', ['if=/dev/zero', `of=${join(dir, 'filler')}`, 'bs=64k'], { stdio: 'ignore' });
          } catch {
            // ENOSPC: full
          }
        };
        try {
          const agent = await stack.addAgent(join(agentMount, 'data'));
          await agent.connected();
          await waitFor(() => stack.storedCount() >= 3, 'live reports', 60_000);

          // 1. The agent's disk fills while the uplink is cut: reports go to the bounded memory queue.
          await stack.proxies[0]?.cut();
          fill(agentMount);
          await agent.proc.waitForLog((l) => /Spool disk is full/.test(String(l.msg)), 'spool disk-full error', 20_000);
          await sleep(3000);
          expect(agent.proc.alive).toBe(true);
          rmSync(join(agentMount, 'filler'));
          await stack.proxies[0]?.pass();
          const t1 = await stack.drained(60_000);

          // 2. The collector's disk fills: commits fail, nothing is acked, agents keep their spools.
          fill(storeMount);
          const failLine = await stack.collector.proc.waitForLog(
            (l) => l.msg === 'Batch commit failed: not acked',
            'collector commit failure on a full disk',
            30_000,
          );
          await sleep(4000);
          const spooledWhileFull = stack.ledger.sample();
          expect(stack.collector.proc.alive).toBe(true);
          // What Grafana and the HashwatchStoreDown alert see: the store is down while commits fail.
          const whileFull = await scrape(stack.collector);
          rmSync(join(storeMount, 'filler'));
          const t2 = await stack.drained(90_000);
          const recovered = await scrape(stack.collector);
          const t = {
            produced: t2.produced,
            stored: t2.stored,
            lost: t2.lost,
            duplicates: t2.duplicates,
            lostKeys: [...t1.lostKeys, ...t2.lostKeys],
          };
          conclude(
            'disk full: agent spool (tmpfs 4 MiB, filled), then collector DB (tmpfs 8 MiB, filled)',
            `clear errors (agent "Spool disk is full", collector ${String(failLine.code)}), no crash, no ack while full (${spooledWhileFull} kept spooled), recovery`,
            t,
            { ok: spooledWhileFull > 0 && t1.lost === 0, note: 'ran on a real tmpfs mount (root)', stack },
          );
          expect(failLine.code).toBe('HW_ERR_STORE_FULL');
          expect(spooledWhileFull).toBeGreaterThan(0);
          expect(whileFull.get('hashwatch_store_up')).toBe(0);
          expect(whileFull.get('hashwatch_ingest_commit_failures_total')).toBeGreaterThan(0);
          expect(recovered.get('hashwatch_store_up')).toBe(1);
          expect(recovered.get('hashwatch_store_size_bytes')).toBeGreaterThan(0);
          expect(recovered.get('hashwatch_store_last_commit_timestamp_seconds')).toBeGreaterThan(
            Date.now() / 1000 - 60,
          );
          expect(recovered.get('hashwatch_ingest_commit_duration_seconds_count')).toBeGreaterThan(0);
        } finally {
          await stack.stop();
          unmount(agentMount);
          unmount(storeMount);
        }
      }),
    240_000,
  );
});
