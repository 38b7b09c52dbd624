/**
 * One collector (embedded broker, default config) serving a fleet of simulated agents at their
 * real interval for a sustained window: collector CPU and RSS, report → ack latency, acked vs
 * offered samples, and database bytes per sample (so per rig-day) from a fresh database.
 */
import type { RigSample } from '@hashwatch/protocol';
import Database from 'better-sqlite3';
import { Fleet } from '../../fleet/fleet.js';
import { CollectorProc } from '../collector-proc.js';
import { percentile, sleep, watchProcess } from '../proc.js';

export interface FleetBenchOptions {
  rigs: number;
  rigsPerHost: number;
  sites: number;
  intervalMs: number;
  warmupMs: number;
  measureMs: number;
}

export interface FleetResult extends FleetBenchOptions {
  hosts: number;
  offeredSamplesPerS: number;
  ackedSamplesPerS: number;
  unackedAtEnd: number;
  p50AckMs: number;
  p99AckMs: number;
  maxAckMs: number;
  collectorCpuPercent: number;
  collectorRssMaxBytes: number;
  samplesStored: number;
  dbBytes: number;
  bytesPerSample: number;
  bytesPerRigDay: number;
}

export async function benchFleet(shape: RigSample, o: FleetBenchOptions, log: (s: string) => void) {
  const hosts = Math.ceil(o.rigs / o.rigsPerHost);
  // A collector busy diagnosing must not drop publishers that are still connecting.
  const collector = new CollectorProc({ config: { broker: { embedded: { connect_timeout_ms: 120_000 } } } });
  let fleet: Fleet | undefined;
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
    await fleet.start();
    log(`fleet: ${hosts} hosts connected`);
    fleet.go();
    await sleep(o.warmupMs);
    const a = await fleet.stats();
    const watch = watchProcess(collector.pid, 1000);
    const t0 = performance.now();
    const latencies: number[] = [];
    // Collect latencies in slices so a long window does not pile them up in the workers.
    const deadline = t0 + o.measureMs;
    let b = a;
    while (performance.now() < deadline) {
      await sleep(Math.min(5000, Math.max(0, deadline - performance.now())));
      b = await fleet.stats();
      for (const l of b.latenciesMs) latencies.push(l);
    }
    const dt = (performance.now() - t0) / 1000;
    const cpu = watch.stop();
    fleet.pause();
    await fleet.stop();
    fleet = undefined;
    await collector.stop();
    const db = new Database(collector.dbPath, { readonly: true });
    const samplesStored = (db.prepare('SELECT count(*) AS n FROM samples').get() as { n: number }).n;
    db.close();
    const dbBytes = collector.dbBytes();
    const bytesPerSample = samplesStored > 0 ? dbBytes / samplesStored : Number.NaN;
    const result: FleetResult = {
      ...o,
      hosts,
      offeredSamplesPerS: ((b.sent - a.sent) * o.rigsPerHost) / dt,
      ackedSamplesPerS: (b.ackedSamples - a.ackedSamples) / dt,
      unackedAtEnd: b.inflight,
      p50AckMs: percentile(latencies, 50),
      p99AckMs: percentile(latencies, 99),
      maxAckMs: percentile(latencies, 100),
      collectorCpuPercent: cpu.cpuPercent,
      collectorRssMaxBytes: cpu.rssMaxBytes,
      samplesStored,
      dbBytes,
      bytesPerSample,
      bytesPerRigDay: bytesPerSample * (86_400_000 / o.intervalMs),
    };
    log(
      `fleet: acked ${Math.round(result.ackedSamplesPerS)}/${Math.round(result.offeredSamplesPerS)} samples/s, p99 ack ${Math.round(result.p99AckMs)} ms, cpu ${result.collectorCpuPercent.toFixed(0)} %`,
    );
    return result;
  } catch (err) {
    throw new Error(`${(err as Error).message}\ncollector output:\n${collector.output()}`);
  } finally {
    await fleet?.stop();
    await collector.dispose();
  }
}
