/**
 * The diagnosis runner against a real SQLite file, replaying what the collector heard in the fault
 * run "uplink cut 2 min" that ended with connectivity_loss rows and no incident at all: the agent
 * spooled its first reports (rigs answering late) before it got through, replayed them, and was cut
 * before any live report arrived.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Birth, ProbeResult, Report, RigSample } from '@hashwatch/protocol';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FleetView } from '../fleet/view.js';
import type { CommittedReport, Ingest, PresenceChange } from '../ingest/index.js';
import { attribution } from '../store/queries.js';
import { Store } from '../store/store.js';
import { DiagnosisRunner } from './runner.js';

const SITE = 'cut120';
const HOST = 'host-1';
const BOOT = 'e08a3eff-7eae-4e67-b5d3-bd257e06eea6';
const I = 1000;
const T0 = 1_795_593_011_390;
const RIGS = ['rig-001', 'rig-002', 'rig-003'];
const NOMINAL = 110e12;

/** The runner's options in every test here: 5 s ticks, saturation past 90 % of the event loop. */
const options = {
  tickMs: 5000,
  persistMs: 60_000,
  keepClosedIncidentsMs: 3_600_000,
  behindUtilization: 0.9,
  config: {},
};

let dir: string;
let file: string;
let now: number;

function openStore(): Store {
  const s = new Store({ path: file, busyTimeoutMs: 200, cacheSizeMiB: 8, checkpointPages: 1000 });
  s.open();
  return s;
}

/** The three hooks the runner subscribes to, fired by hand in delivery order. */
function fakeIngest() {
  const births: ((site: string, host: string, birth: Birth) => void)[] = [];
  const presence: ((change: PresenceChange) => void)[] = [];
  const committed: ((reports: CommittedReport[]) => void)[] = [];
  const ingest = {
    onBirth: (l: (typeof births)[number]) => births.push(l),
    onPresence: (l: (typeof presence)[number]) => presence.push(l),
    onCommitted: (l: (typeof committed)[number]) => committed.push(l),
  } as unknown as Ingest;
  return {
    ingest,
    birth: (conn: number) => {
      const b: Birth = {
        v: 1,
        boot_id: BOOT,
        conn,
        ts: now,
        agent_version: 'test',
        host: { hostname: HOST, os: 'linux', arch: 'x64', uptime_s: 6872 },
        interval_ms: I,
        rigs: RIGS.map((id) => ({
          id,
          model: 'S19',
          api: 'cgminer',
          nominal_hashrate_hs: NOMINAL,
          nominal_power_w: 3250,
        })),
        probes: [],
      };
      for (const l of births) l(SITE, HOST, b);
    },
    presence: (conn: number, status: 'online' | 'offline') => {
      const session = { bootId: BOOT, conn, ts: now, status, reason: status === 'offline' ? ('lost' as const) : null };
      for (const l of presence) l({ site: SITE, host: HOST, session });
    },
    commit: (reports: Report[]) => {
      for (const l of committed) l(reports.map((report) => ({ site: SITE, host: HOST, report, receivedAtMs: now })));
    },
  };
}

/** Report seq k (ts T0 + k s): rigs not answering, the uplink cut, or all well. */
function report(k: number, kind: 'late' | 'cut' | 'ok', historical: boolean): Report {
  const ts = T0 + k * I;
  const rigs: RigSample[] = RIGS.map((rig) =>
    kind === 'late'
      ? { rig, ts, reachable: false, error: { kind: 'timeout', message: 'no reply within 800 ms' } }
      : {
          rig,
          ts,
          reachable: true,
          hashrate_hs: NOMINAL,
          pools: [{ url: 'stratum+tcp://pool:3333', status: kind === 'cut' ? 'dead' : 'alive', active: true }],
        },
  );
  const probe = (target: string, role: ProbeResult['role'], ok: boolean): ProbeResult =>
    ok
      ? { target, kind: 'tcp', role, ok, attempts: 1, loss_ratio: 0, latency_ms: 2, ts }
      : { target, kind: 'tcp', role, ok, attempts: 1, loss_ratio: 1, error_class: 'timeout', ts };
  const up = kind !== 'cut';
  return {
    v: 1,
    boot_id: BOOT,
    seq: k,
    ts,
    interval_ms: I,
    ...(historical ? { historical: true } : {}),
    rigs,
    probes: [probe('gw', 'gateway', true), probe('inet', 'internet', up), probe('pool', 'pool', up)],
  };
}

/** A started runner on a fresh store, at T0, whose host has just announced itself (birth, online). */
function startOnline(utilization: () => number) {
  const store = openStore();
  const view = new FleetView();
  const feed = fakeIngest();
  const runner = new DiagnosisRunner(
    { store, view, ingest: feed.ingest, log: pino({ level: 'silent' }), now: () => now, utilization },
    options,
  );
  runner.start();
  now = T0;
  store.ensureHost(SITE, HOST, now);
  feed.birth(1);
  feed.presence(1, 'online');
  return { store, view, feed, runner };
}

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hw-diag-runner-'));
  file = path.join(dir, 'hw.db');
  vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
});

afterEach(() => {
  vi.useRealTimers();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('DiagnosisRunner on a real store', () => {
  it.each([
    ['without a restart', false],
    ['with a collector restart in the middle of the cut', true],
  ])('stores the incidents of a cut that began before the first live report (%s)', (_name, restart) => {
    let store = openStore();
    const view = new FleetView();
    const log = pino({ level: 'silent' });
    const feed = fakeIngest();
    const start = () => {
      const r = new DiagnosisRunner(
        { store, view, ingest: feed.ingest, log, now: () => now, utilization: () => 0.1 },
        options,
      );
      r.start();
      return r;
    };
    let runner = start();
    const wait = (ms: number) => {
      for (let t = 0; t < ms; t += I) {
        now += I;
        vi.advanceTimersByTime(I);
      }
    };

    // Connected 4.7 s after the agent started: its first five reports come from the spool.
    now = T0 + 4700;
    store.ensureHost(SITE, HOST, now); // the ingest stores the birth before the runner hears it
    feed.birth(1);
    feed.presence(1, 'online');
    feed.commit([0, 1, 2, 3, 4].map((k) => report(k, k < 4 ? 'late' : 'cut', true)));
    now += 420;
    feed.presence(1, 'offline');
    const cutFromMs = now;
    wait(60_000);
    if (restart) {
      runner.stop();
      store.close();
      store = openStore();
      runner = start();
    }
    wait(60_000);
    const cutToMs = now;
    feed.birth(164);
    feed.presence(164, 'online');
    // The spool replays in batches of 20 while the next live report is already in the first one.
    const spool = Array.from({ length: 121 }, (_, i) => report(5 + i, 'cut', true));
    const live = report(126, 'ok', false);
    feed.commit([...spool.slice(0, 20), live]);
    for (let i = 20; i < spool.length; i += 20) feed.commit(spool.slice(i, i + 20));
    for (let k = 127; k < 147; k++) {
      wait(I);
      feed.commit([report(k, 'ok', false)]);
    }
    runner.stop();

    const db = store.db;
    const incidents = db.prepare('SELECT scope, cause, start_ms, end_ms FROM incidents').all() as {
      scope: string;
      cause: string;
      start_ms: number;
      end_ms: number | null;
    }[];
    expect(incidents.length).toBeGreaterThan(0);
    const unexplained = db
      .prepare(
        `SELECT COUNT(*) AS n FROM accounting a WHERE a.state != 'ok' AND NOT EXISTS (
           SELECT 1 FROM incidents i WHERE i.scope = 'rig' AND i.scope_id = a.rig_id
             AND i.start_ms <= a.ts AND (i.end_ms IS NULL OR a.ts < i.end_ms))`,
      )
      .get() as { n: number };
    expect(unexplained.n).toBe(0);
    const site = incidents.filter((i) => i.scope === 'site' && i.cause === 'connectivity_loss');
    expect(site).toHaveLength(1);
    expect(site[0]?.start_ms).toBeLessThanOrEqual(cutFromMs);
    expect(site[0]?.end_ms).toBeGreaterThanOrEqual(cutToMs);
    const a = attribution(store, { fromMs: cutFromMs, toMs: cutToMs, site: SITE });
    expect(a.by_cause.map((c) => c.cause)).toEqual(['connectivity_loss']);
    expect(runner.stats().applyFailures).toBe(0);
    store.close();
  });

  it('closes at the restart the incidents a killed collector opened after its last state save', () => {
    let store = openStore();
    const view = new FleetView();
    const log = pino({ level: 'silent' });
    let feed = fakeIngest();
    const start = () => {
      const r = new DiagnosisRunner(
        { store, view, ingest: feed.ingest, log, now: () => now, utilization: () => 0.1 },
        options,
      );
      r.start();
      return r;
    };
    start();
    now = T0;
    store.ensureHost(SITE, HOST, now);
    feed.birth(1);
    feed.presence(1, 'online');
    for (let k = 0; k < 70; k++) {
      now = T0 + k * I + 50;
      vi.advanceTimersByTime(I);
      feed.commit([report(k, 'ok', false)]);
    }
    // The state was saved at 60 s; the agent's Will then opens the gap incidents, and the collector
    // is killed (no stop: nothing more is saved).
    feed.presence(1, 'offline');
    const open = () =>
      store.db.prepare('SELECT key, end_ms, evidence_json FROM incidents WHERE end_ms IS NULL').all() as {
        key: string;
        end_ms: number | null;
        evidence_json: string;
      }[];
    const orphans = open().map((i) => i.key);
    expect(orphans.length).toBeGreaterThan(0);
    vi.clearAllTimers();
    store.close();

    now += 30_000;
    const restartMs = now;
    store = openStore();
    feed = fakeIngest();
    const runner = start();
    expect(open()).toEqual([]);
    const closed = store.db
      .prepare(`SELECT key, end_ms, evidence_json FROM incidents WHERE key IN (${orphans.map(() => '?').join(',')})`)
      .all(...orphans) as { key: string; end_ms: number; evidence_json: string }[];
    expect(closed).toHaveLength(orphans.length);
    for (const i of closed) {
      expect(i.end_ms).toBe(restartMs);
      expect(JSON.parse(i.evidence_json).evidence.map((e: { signal: string }) => e.signal)).toContain(
        'collector.restart',
      );
    }
    runner.stop();
    store.close();
  });

  it('holds silence judgments while the collector is saturated, and judges them once it is not', () => {
    let busy = 0.2;
    const { store, feed, runner } = startOnline(() => busy);
    const rig = `${SITE}/${HOST}/${RIGS[0]}`;
    let k = 0;
    const live = (ms: number) => {
      for (let t = 0; t < ms; t += I) {
        now = T0 + k * I + 50;
        vi.advanceTimersByTime(I);
        feed.commit([report(k++, 'ok', false)]);
      }
    };
    const quiet = (ms: number) => {
      for (let t = 0; t < ms; t += I) {
        now += I;
        vi.advanceTimersByTime(I);
      }
    };
    live(10_000);
    expect(runner.stateOf('rig', rig)?.state).toBe('ok');
    // Saturated: for 20 s (20 intervals) no report is read, yet nobody is judged silent.
    busy = 0.97;
    quiet(20_000);
    expect(runner.stats().behind).toBe(true);
    expect(runner.stats().behindTicks).toBeGreaterThanOrEqual(3);
    expect(runner.stateOf('rig', rig)?.state).toBe('ok');
    expect(runner.stateOf('host', `${SITE}/${HOST}`)?.state).toBe('ok');
    // The loop frees up and the host is still quiet: the next tick judges it.
    busy = 0.3;
    quiet(5_000);
    expect(runner.stats().behind).toBe(false);
    expect(runner.stateOf('rig', rig)?.state).toBe('unknown');
    runner.stop();
    store.close();
  });

  it('counts each interval once in the deficit counter, as the accounting table holds it', () => {
    const { store, view, feed, runner } = startOnline(() => 0.1);
    // A cut, then lone samples of another state: each is written first as a provisional row under
    // connectivity_loss, then rewritten by its final row when the next cut sample shows it was noise.
    const kinds: ('cut' | 'late')[] = ['cut', 'cut', 'cut', 'cut', 'late', 'cut', 'cut', 'late', 'cut', 'cut'];
    kinds.forEach((kind, k) => {
      now = T0 + k * I + 50;
      vi.advanceTimersByTime(I);
      feed.commit([report(k, kind, false)]);
    });
    runner.stop();
    const stored = store.db
      .prepare("SELECT state, SUM(deficit_hashes) AS d FROM accounting WHERE state != 'ok' GROUP BY state")
      .all() as { state: string; d: number }[];
    expect(stored.map((r) => r.state)).toEqual(['connectivity_loss']);
    const counted = view.deficitHashesByCause.connectivity_loss;
    expect(counted).toBeGreaterThan(0);
    expect(counted).toBeCloseTo(stored[0]?.d ?? 0, -3);
    expect(Object.entries(view.deficitHashesByCause).filter(([c, d]) => c !== 'connectivity_loss' && d > 0)).toEqual(
      [],
    );
    store.close();
  });
});
