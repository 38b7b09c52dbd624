/**
 * Ingest end to end: agent-shaped publishers (fleet simulator, flood mode: a fixed number of
 * reports unacknowledged per host) → broker → collector (validation, batch, SQLite commit with
 * synchronous=FULL) → ack received by the publisher. Counted: rig samples whose ack arrived in the
 * measuring window. Embedded aedes and Debian's mosquitto (collector in external mode) in the same
 * run, beside the single-threaded ceilings measured on the same rows, and the embedded broker once
 * more with the report batches written on the main thread (`store.writer_thread: false`), the
 * baseline of the writer thread.
 */
import type { RigSample } from '@hashwatch/protocol';
import { startMosquitto } from '../../../collector/test/helpers/mosquitto.js';
import { Fleet } from '../../fleet/fleet.js';
import { CollectorProc } from '../collector-proc.js';
import { median, percentile, sleep, watchProcess } from '../proc.js';
import { decodeRate, rawInsertRate, storeCommitRate } from './ceiling.js';

export interface IngestBenchOptions {
  rigSizes: number[];
  runs: number;
  warmupMs: number;
  measureMs: number;
  brokers: Array<'embedded' | 'mosquitto'>;
  ceilingSamples: number;
  /** Extra node flags for the collector, e.g. `--cpu-prof` (see run.ts `--ingest-cpu-prof`). */
  collectorNodeArgs?: string[];
  /** Also measure the embedded broker with `store.writer_thread: false`. */
  inlineBaseline: boolean;
}

export interface IngestRun {
  samplesPerS: number;
  reportsPerS: number;
  p99AckMs: number;
  collectorCpuPercent: number;
  /** Collector RSS, max over the window (absent in results older than it). */
  collectorRssMaxBytes?: number;
  /** The publishers' processes together, on the same cores (absent in results older than it). */
  publisherCpuPercent?: number;
}

export interface IngestRow {
  broker: 'embedded' | 'mosquitto';
  /** Report batches written on the writer thread (the default); absent in results older than it. */
  writerThread?: boolean;
  rigsPerReport: number;
  reportBytes: number;
  hosts: number;
  inflightPerHost: number;
  runs: IngestRun[];
  medianSamplesPerS: number;
  medianP99AckMs: number;
}

export interface IngestResult {
  ceilings: Array<{ rigsPerReport: number; rawPerS: number; storePerS: number; decodePerS: number }>;
  rows: IngestRow[];
}

const EXTERNAL = { url: '', client_id: 'bench-collector', clean_session: true, max_unacked: 10_000 };

/** The embedded broker's CONNECT deadline, raised: a collector busy diagnosing must not drop publishers. */
const EMBEDDED = { connect_timeout_ms: 120_000 };

/** Hosts and unacked reports per host for each report size: enough in flight to keep batches full. */
function load(rigs: number): { hosts: number; inflight: number } {
  if (rigs <= 1) return { hosts: 20, inflight: 50 };
  if (rigs <= 100) return { hosts: 10, inflight: 8 };
  return { hosts: 8, inflight: 4 };
}

/**
 * One measured run. `run` names its sites, so every run brings its own rigs: flooding the same
 * rigs run after run piled ~700 samples per rig into one 10-minute index bucket per run (a rig
 * reporting every 10 s puts 60 there), and each run then measured slower than the one before
 * (73k, 59k, 55k, 49k samples/s on one collector; 60k, 74k, 59k, 72k with new rigs per run).
 */
async function oneRun(
  url: string,
  collectorPid: number,
  shape: RigSample,
  rigs: number,
  run: number,
  o: IngestBenchOptions,
) {
  const { hosts, inflight } = load(rigs);
  const fleet = new Fleet({
    url,
    site: `ingest${rigs}x${run}r`,
    sites: hosts,
    hosts,
    rigsPerHost: rigs,
    intervalMs: 10_000,
    mode: 'flood',
    maxInflight: inflight,
    shape,
    processes: 1,
  });
  try {
    await fleet.start();
    fleet.go();
    await sleep(o.warmupMs);
    const a = await fleet.stats();
    const watch = watchProcess(collectorPid, 500);
    const publisherWatches = fleet.pids().map((pid) => watchProcess(pid, 500));
    const t0 = performance.now();
    await sleep(o.measureMs);
    const b = await fleet.stats();
    const dt = (performance.now() - t0) / 1000;
    const cpu = watch.stop();
    const publisherCpu = publisherWatches.reduce((sum, w) => sum + w.stop().cpuPercent, 0);
    fleet.pause();
    if (b.rejectedInbound > 0) throw new Error(`publishers rejected ${b.rejectedInbound} inbound messages`);
    return {
      run: {
        samplesPerS: (b.ackedSamples - a.ackedSamples) / dt,
        reportsPerS: (b.acked - a.acked) / dt,
        p99AckMs: percentile(b.latenciesMs, 99),
        collectorCpuPercent: cpu.cpuPercent,
        collectorRssMaxBytes: cpu.rssMaxBytes,
        publisherCpuPercent: publisherCpu,
      },
      hosts,
      inflight,
      reportBytes: b.reportBytes,
    };
  } finally {
    await fleet.stop();
  }
}

export async function benchIngest(shape: RigSample, o: IngestBenchOptions, log: (s: string) => void) {
  const result: IngestResult = { ceilings: [], rows: [] };
  for (const rigs of o.rigSizes) {
    const raw: number[] = [];
    const store: number[] = [];
    const dec: number[] = [];
    const n = Math.max(rigs, rigs === 1 ? Math.floor(o.ceilingSamples / 10) : o.ceilingSamples);
    for (let i = 0; i < o.runs; i++) {
      raw.push(rawInsertRate(shape, rigs, n));
      store.push(storeCommitRate(shape, rigs, n));
      dec.push(decodeRate(shape, rigs, n));
    }
    const row = { rigsPerReport: rigs, rawPerS: median(raw), storePerS: median(store), decodePerS: median(dec) };
    log(`ceiling ${rigs} rigs: raw ${Math.round(row.rawPerS)}/s store ${Math.round(row.storePerS)}/s`);
    result.ceilings.push(row);
  }
  const variants = o.brokers.map((broker) => ({ broker, writerThread: true }));
  if (o.inlineBaseline) variants.push({ broker: 'embedded', writerThread: false });
  for (const { broker, writerThread } of variants) {
    const label = `${broker}${writerThread ? '' : ' (inline writes)'}`;
    for (const rigs of o.rigSizes) {
      const mosquitto = broker === 'mosquitto' ? await startMosquitto() : undefined;
      // A fresh collector per report size: the diagnosis keeps every rig it saw, and its cost per
      // report grows with the rigs of the site (see BENCHMARKS.md), so sizes must not share one.
      // max_unacked above what the publishers keep in flight: with the default (100) the external
      // transport deadlocks under this load (see BENCHMARKS.md, "Known problems").
      const collector = new CollectorProc({
        config: {
          ...(mosquitto
            ? { broker: { mode: 'external', external: { ...EXTERNAL, url: mosquitto.url } } }
            : { broker: { embedded: { ...EMBEDDED } } }),
          ...(writerThread ? {} : { store: { writer_thread: false } }),
        },
        ...(mosquitto ? { externalUrl: mosquitto.url } : {}),
        ...(o.collectorNodeArgs ? { nodeArgs: o.collectorNodeArgs } : {}),
      });
      try {
        await collector.start();
        const runs: IngestRun[] = [];
        let meta = { hosts: 0, inflight: 0, reportBytes: 0 };
        for (let i = 0; i < o.runs; i++) {
          const r = await oneRun(collector.mqttUrl, collector.pid, shape, rigs, i, o);
          runs.push(r.run);
          meta = r;
          log(
            `ingest ${label} ${rigs} rigs run ${i + 1}: ${Math.round(r.run.samplesPerS)} samples/s, p99 ack ${r.run.p99AckMs.toFixed(0)} ms, cpu ${r.run.collectorCpuPercent.toFixed(0)} % (publishers ${(r.run.publisherCpuPercent ?? 0).toFixed(0)} %), rss ${((r.run.collectorRssMaxBytes ?? 0) / 1e6).toFixed(0)} MB`,
          );
        }
        result.rows.push({
          broker,
          writerThread,
          rigsPerReport: rigs,
          reportBytes: meta.reportBytes,
          hosts: meta.hosts,
          inflightPerHost: meta.inflight,
          runs,
          medianSamplesPerS: median(runs.map((r) => r.samplesPerS)),
          medianP99AckMs: median(runs.map((r) => r.p99AckMs)),
        });
      } catch (err) {
        throw new Error(`${(err as Error).message}\ncollector output:\n${collector.output()}`);
      } finally {
        await collector.dispose();
        await mosquitto?.stop();
      }
    }
  }
  return result;
}
