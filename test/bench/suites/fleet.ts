/**
 * One collector (embedded broker, default config) serving a fleet of simulated agents at their
 * real interval for a sustained window: collector CPU and RSS, report → ack latency, acked vs
 * offered samples, and database bytes per sample (so per rig-day) from a fresh database.
 *
 * Report → state change: `faultAtMs` into the window, a few rigs on hosts of different sites lose
 * all hashrate while powered (→ `hardware_fault`) and one host's uplink is cut (→
 * `connectivity_loss` for its rigs). The latency of a rig is the time its new state reached a
 * live-view client (`/live`, one client per faulty host) minus the `ts` of the first report that
 * carried the fault. The diagnosis waits for `confirm` agreeing reports before it switches, and
 * the k-th report is sent k−1 intervals after the first: that designed floor is reported beside
 * the measure, so what remains above it is queueing in the collector.
 *
 * `/metrics` is scraped during the window as a Prometheus would (`scrapeEveryMs`, gzip), which
 * also gives the collector's event-loop delay between scrapes (see scraper.ts).
 */
import { DEFAULT_CONFIG } from '@hashwatch/diagnosis';
import type { RigSample } from '@hashwatch/protocol';
import Database from 'better-sqlite3';
import { Fleet } from '../../fleet/fleet.js';
import type { FaultRecord, FaultSpec } from '../../fleet/protocol.js';
import { StateWatch } from '../../fleet/state-watch.js';
import { CollectorProc } from '../collector-proc.js';
import { percentile, sleep, watchProcess } from '../proc.js';
import { type ScrapeStats, scrapeOnce, startScraper } from '../scraper.js';
import { measureStorage, type StorageResult } from '../storage.js';

export interface FleetBenchOptions {
  rigs: number;
  rigsPerHost: number;
  sites: number;
  intervalMs: number;
  warmupMs: number;
  measureMs: number;
  /** When the faults start, from the start of the measurement window. */
  faultAtMs: number;
  /** Hosts (on different sites where possible) with `hardwareRigsPerHost` rigs losing all hashrate. */
  hardwareHosts: number;
  hardwareRigsPerHost: number;
  /** Hosts whose uplink is cut (every rig of the host). */
  uplinkHosts: number;
  /** Longest wait for the state changes after the faults start (the fleet keeps reporting meanwhile). */
  faultTimeoutMs: number;
  /** A Prometheus-like scrape of `/metrics` every this many ms during the window (0: none). */
  scrapeEveryMs: number;
  /** Extra node flags for the collector, e.g. `--cpu-prof` (see run.ts `--fleet-cpu-prof`). */
  collectorNodeArgs?: string[];
  /** Collector config merged over the bench's (see run.ts `--fleet-config`). */
  collectorConfig?: Record<string, Record<string, unknown>>;
}

/** Report → state change for one kind of fault. */
export interface StateChangeRow {
  kind: FaultSpec['kind'];
  /** The state the collector must reach. */
  state: string;
  hosts: number;
  rigs: number;
  /** Rigs whose new state was seen before the timeout. */
  observed: number;
  /** Agreeing reports the diagnosis needs (`confirm_reports` / `confirm_reports_hardware`). */
  confirmReports: number;
  /** (confirmReports − 1) × interval: when the confirming report is sent, after the first faulty one. */
  floorMs: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** State of the rigs just before their first faulty report (should be all `ok`). */
  statesBefore: Record<string, number>;
  /** Rigs per state they were seen entering after the fault (a rig counts once per state). */
  statesAfter: Record<string, number>;
}

export interface FleetResult extends Omit<FleetBenchOptions, 'collectorNodeArgs' | 'collectorConfig'> {
  /** Collector config the run changed from the defaults, if any. */
  configChanges?: Record<string, Record<string, unknown>>;
  /**
   * Rigs the collector ever labelled `unknown`. Every agent keeps reporting in this benchmark, so
   * each is a false silence (a collector that read its reports too late).
   */
  rigsEverUnknown?: number;
  hosts: number;
  offeredSamplesPerS: number;
  ackedSamplesPerS: number;
  unackedAtEnd: number;
  p50AckMs: number;
  p99AckMs: number;
  maxAckMs: number;
  collectorCpuPercent: number;
  collectorRssMaxBytes: number;
  /** CPU of the fleet simulator's worker processes, summed (one core = 100 %): they share the machine. */
  simulatorCpuPercent: number;
  simulatorProcesses: number;
  samplesStored: number;
  dbBytes: number;
  bytesPerSample: number;
  bytesPerRigDay: number;
  /** Bytes by table, and one rig's settled size under the default retention. */
  storage?: StorageResult;
  stateChange: StateChangeRow[];
  /** Live-view frames unreadable or clients closed early (the state-change figures are partial if > 0). */
  liveProblems: number;
  /** The scrapes during the window, with the collector's event-loop delay between them. */
  scrape?: ScrapeStats;
}

const EXPECTED: Record<FaultSpec['kind'], string> = { hardware: 'hardware_fault', uplink: 'connectivity_loss' };

/**
 * Which hosts get which fault. Hardware hosts step by `sites + 1`, so consecutive picks land on
 * different sites (hosts are spread round-robin); uplink hosts are taken from the end of the fleet.
 */
export function planFaults(o: FleetBenchOptions, hosts: number): { index: number; spec: Omit<FaultSpec, 'host'> }[] {
  const used = new Set<number>();
  const out: { index: number; spec: Omit<FaultSpec, 'host'> }[] = [];
  const rigs = Array.from({ length: Math.min(o.hardwareRigsPerHost, o.rigsPerHost) }, (_, k) =>
    Math.floor(((k + 0.5) * o.rigsPerHost) / Math.max(1, o.hardwareRigsPerHost)),
  );
  for (let k = 0, i = 0; k < o.hardwareHosts && used.size < hosts; k++, i = (i + o.sites + 1) % hosts) {
    while (used.has(i)) i = (i + 1) % hosts;
    used.add(i);
    out.push({ index: i, spec: { kind: 'hardware', rigs } });
  }
  for (let k = 0, i = hosts - 1; k < o.uplinkHosts && used.size < hosts; k++, i--) {
    while (used.has(i)) i = (i - 1 + hosts) % hosts;
    used.add(i);
    out.push({ index: i, spec: { kind: 'uplink', rigs: [] } });
  }
  return out;
}

export async function benchFleet(shape: RigSample, o: FleetBenchOptions, log: (s: string) => void) {
  const hosts = Math.ceil(o.rigs / o.rigsPerHost);
  // A collector busy diagnosing must not drop publishers that are still connecting.
  const collector = new CollectorProc({
    config: { broker: { embedded: { connect_timeout_ms: 120_000 } }, ...o.collectorConfig },
    ...(o.collectorNodeArgs ? { nodeArgs: o.collectorNodeArgs } : {}),
  });
  let fleet: Fleet | undefined;
  let watch: StateWatch | undefined;
  try {
    await collector.start();
    fleet = new Fleet({
      url: collector.mqttUrl,
      site: 'farm',
      sites: o.sites,
      hosts,
      rigsPerHost: o.rigsPerHost,
      intervalMs: o.intervalMs,
      mode: 'interval',
      shape,
      processes: hosts >= 100 ? 2 : 1,
      connectConcurrency: 25,
    });
    const f = fleet;
    const plan = planFaults(o, hosts).map(({ index, spec }) => ({
      site: f.siteOf(index),
      spec: { ...spec, host: f.hostName(index) } satisfies FaultSpec,
    }));
    // Before the fleet is born, so the clients' first snapshots are empty.
    watch = new StateWatch(
      `ws://127.0.0.1:${collector.httpPort}/live`,
      plan.map((p) => ({ site: p.site, host: p.spec.host })),
    );
    await watch.start();
    await fleet.start();
    log(`fleet: ${hosts} hosts connected`);
    fleet.go();
    // The first scrape renders cold (label cache, page buffer); the second starts the first interval.
    if (o.scrapeEveryMs > 0) await scrapeOnce(collector.httpPort);
    await sleep(o.warmupMs);
    if (o.scrapeEveryMs > 0) await scrapeOnce(collector.httpPort);
    const scraper = o.scrapeEveryMs > 0 ? startScraper(collector.httpPort, o.scrapeEveryMs) : undefined;
    const a = await fleet.stats();
    const cpuWatch = watchProcess(collector.pid, 1000);
    const simWatches = fleet.pids().map((pid) => watchProcess(pid, 5000));
    const t0 = performance.now();
    const latencies: number[] = [];
    const faults = new Map<string, FaultRecord>();
    const keep = (records: FaultRecord[]) => {
      for (const r of records) faults.set(`${r.site}/${r.host}`, r);
    };
    // Collect latencies in slices so a long window does not pile them up in the workers.
    const deadline = t0 + o.measureMs;
    const faultAt = t0 + Math.min(o.faultAtMs, o.measureMs);
    let injectedAtMs: number | undefined;
    let b = a;
    while (performance.now() < deadline) {
      const until = injectedAtMs === undefined ? Math.min(faultAt, deadline) : deadline;
      await sleep(Math.min(5000, Math.max(0, until - performance.now())));
      if (injectedAtMs === undefined && performance.now() >= faultAt) {
        fleet.injectFaults(plan.map((p) => p.spec));
        injectedAtMs = Date.now();
        log(`fleet: faults injected on ${plan.length} hosts`);
      }
      b = await fleet.stats();
      for (const l of b.latenciesMs) latencies.push(l);
      keep(b.faults);
    }
    const dt = (performance.now() - t0) / 1000;
    const scrape = await scraper?.stop();
    const cpu = cpuWatch.stop();
    const simCpu = simWatches.map((w) => w.stop().cpuPercent).reduce((x, y) => x + y, 0);
    // The fleet keeps reporting until every faulty rig's new state is seen, or the timeout.
    const expected = plan.reduce((n, p) => n + (p.spec.kind === 'uplink' ? o.rigsPerHost : p.spec.rigs.length), 0);
    const seen = () => {
      let n = 0;
      for (const r of faults.values())
        for (const rig of r.rigs) if (watch?.firstAt(r.site, r.host, rig, EXPECTED[r.kind], r.firstTs)) n++;
      return n;
    };
    const faultDeadline = (injectedAtMs ?? Date.now()) + o.faultTimeoutMs;
    while (seen() < expected && Date.now() < faultDeadline) {
      await sleep(250);
      keep((await fleet.stats()).faults);
    }
    // The watch stops first: the agents' Wills at the fleet's stop would read as state changes.
    watch.stop();
    const pausedAtMs = Date.now();
    fleet.pause();
    await fleet.stop();
    fleet = undefined;
    await collector.stop();
    const stateChange = stateChangeRows(plan, faults, watch, o);
    const db = new Database(collector.dbPath, { readonly: true });
    const samplesStored = (db.prepare('SELECT count(*) AS n FROM samples').get() as { n: number }).n;
    // Rigs are rightly unknown once their agents stop at the end: only what began a whole interval
    // before the pause counts as a false silence.
    const reportingUntil = pausedAtMs - o.intervalMs;
    const rigsEverUnknown = (
      db
        .prepare("SELECT count(DISTINCT rig_id) AS n FROM accounting WHERE state = 'unknown' AND ts < ?")
        .get(reportingUntil) as { n: number }
    ).n;
    // Each false `unknown` says where and when it was, and why the diagnosis thought so.
    const unknownRigs = db
      .prepare(
        `SELECT h.name AS host, r.name AS rig, min(a.ts) AS firstTs, count(*) AS rows,
           (SELECT evidence_json FROM incidents i WHERE i.scope = 'rig' AND i.scope_id = r.id AND i.cause = 'unknown'
             ORDER BY start_ms LIMIT 1) AS evidence
         FROM accounting a JOIN rigs r ON r.id = a.rig_id JOIN hosts h ON h.id = r.host_id
         WHERE a.state = 'unknown' AND a.ts < ? GROUP BY a.rig_id ORDER BY firstTs LIMIT 10`,
      )
      .all(reportingUntil) as Array<{
      host: string;
      rig: string;
      firstTs: number;
      rows: number;
      evidence: string | null;
    }>;
    for (const u of unknownRigs) {
      const at =
        injectedAtMs === undefined ? '' : `, ${((u.firstTs - injectedAtMs) / 1000).toFixed(1)} s from the faults`;
      log(
        `fleet: false unknown ${u.host}/${u.rig}: ${u.rows} rows from ${new Date(u.firstTs).toISOString()}${at}; evidence ${u.evidence ?? 'none'}`,
      );
    }
    db.close();
    const dbBytes = collector.dbBytes();
    const storage = measureStorage(collector.dbPath, o.rigs);
    const bytesPerSample = samplesStored > 0 ? dbBytes / samplesStored : Number.NaN;
    const { collectorNodeArgs: _args, collectorConfig, ...options } = o;
    const result: FleetResult = {
      ...options,
      ...(collectorConfig ? { configChanges: collectorConfig } : {}),
      rigsEverUnknown,
      hosts,
      offeredSamplesPerS: ((b.sent - a.sent) * o.rigsPerHost) / dt,
      ackedSamplesPerS: (b.ackedSamples - a.ackedSamples) / dt,
      unackedAtEnd: b.inflight,
      p50AckMs: percentile(latencies, 50),
      p99AckMs: percentile(latencies, 99),
      maxAckMs: percentile(latencies, 100),
      collectorCpuPercent: cpu.cpuPercent,
      collectorRssMaxBytes: cpu.rssMaxBytes,
      simulatorCpuPercent: simCpu,
      simulatorProcesses: simWatches.length,
      samplesStored,
      dbBytes,
      bytesPerSample,
      bytesPerRigDay: bytesPerSample * (86_400_000 / o.intervalMs),
      storage,
      stateChange,
      liveProblems: watch.problems,
      ...(scrape ? { scrape } : {}),
    };
    const changes = stateChange
      .map(
        (s) =>
          `${s.state} p99 ${s.observed > 0 ? `${Math.round(s.p99Ms)} ms` : 'n/a'} (${s.observed}/${s.rigs} seen, floor ${s.floorMs} ms)`,
      )
      .join(', ');
    log(
      `fleet: acked ${Math.round(result.ackedSamplesPerS)}/${Math.round(result.offeredSamplesPerS)} samples/s, p99 ack ${Math.round(result.p99AckMs)} ms, cpu ${result.collectorCpuPercent.toFixed(0)} % (simulator ${simCpu.toFixed(0)} %), ${changes}, rigs ever unknown ${rigsEverUnknown}`,
    );
    return result;
  } catch (err) {
    throw new Error(`${(err as Error).message}\ncollector output:\n${collector.output()}`);
  } finally {
    watch?.stop();
    await fleet?.stop();
    await collector.dispose();
  }
}

function stateChangeRows(
  plan: { site: string; spec: FaultSpec }[],
  faults: Map<string, FaultRecord>,
  watch: StateWatch,
  o: FleetBenchOptions,
): StateChangeRow[] {
  const rows: StateChangeRow[] = [];
  for (const kind of ['hardware', 'uplink'] as const) {
    const planned = plan.filter((p) => p.spec.kind === kind);
    if (planned.length === 0) continue;
    const records = [...faults.values()].filter((r) => r.kind === kind);
    const state = EXPECTED[kind];
    const confirmReports =
      kind === 'hardware' ? DEFAULT_CONFIG.confirm_reports_hardware : DEFAULT_CONFIG.confirm_reports;
    const latencies: number[] = [];
    const statesBefore: Record<string, number> = {};
    const statesAfter: Record<string, number> = {};
    for (const r of records) {
      for (const rig of r.rigs) {
        const before = watch.stateAt(r.site, r.host, rig, r.firstTs) ?? 'not seen';
        statesBefore[before] = (statesBefore[before] ?? 0) + 1;
        for (const st of new Set(watch.statesSince(r.site, r.host, rig, r.firstTs))) {
          statesAfter[st] = (statesAfter[st] ?? 0) + 1;
        }
        const at = watch.firstAt(r.site, r.host, rig, state, r.firstTs);
        if (at !== undefined) latencies.push(at - r.firstTs);
      }
    }
    rows.push({
      kind,
      state,
      hosts: planned.length,
      // A host that never sent its faulty report counts as unobserved.
      rigs: planned.reduce((n, p) => n + (kind === 'uplink' ? o.rigsPerHost : p.spec.rigs.length), 0),
      observed: latencies.length,
      confirmReports,
      floorMs: (confirmReports - 1) * o.intervalMs,
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
      maxMs: percentile(latencies, 100),
      statesBefore,
      statesAfter,
    });
  }
  return rows;
}
