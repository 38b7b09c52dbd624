/** Messages between the fleet orchestrator (fleet.ts) and its worker processes (worker.ts). */
import type { RigSample } from '@hashwatch/protocol';

export interface WorkerConfig {
  url: string;
  site: string;
  /** Hosts are spread round-robin over this many sites (`${site}${n}`); 1 = all in `site`. */
  sites: number;
  /** Hosts of this worker are `${hostPrefix}${firstHost + i}`. */
  hostPrefix: string;
  firstHost: number;
  hosts: number;
  rigsPerHost: number;
  intervalMs: number;
  mode: 'interval' | 'flood';
  maxInflight: number;
  backdateMs: number;
  /** One real-looking rig sample, copied into every report. */
  shape: RigSample;
  protocolVersion: 4 | 5;
  username?: string;
  password?: string;
  /** Hosts connecting at the same time (a thundering herd is its own benchmark). */
  connectConcurrency: number;
}

export interface WorkerTotals {
  hosts: number;
  connected: number;
  sent: number;
  acked: number;
  ackedSamples: number;
  inflight: number;
  rejectedInbound: number;
  rebirths: number;
  resendsAsked: number;
  disconnects: number;
  reportBytes: number;
}

/**
 * A fault to inject into one host from its next report on (and kept until the end):
 * `hardware` = the listed rigs (indexes) lose all hashrate while powered and reachable;
 * `uplink` = the host's internet and pool probes fail and every rig loses its pool.
 */
export interface FaultSpec {
  host: string;
  kind: 'hardware' | 'uplink';
  /** Rig indexes (`hardware`); ignored for `uplink`, which hits every rig of the host. */
  rigs: number[];
}

/** The first report that carried a fault. */
export interface FaultRecord {
  kind: FaultSpec['kind'];
  site: string;
  host: string;
  /** Rig ids hit by the fault. */
  rigs: string[];
  /** `ts` of the first report carrying the fault (agent clock = this machine's clock, Unix ms). */
  firstTs: number;
  seq: number;
}

export type ToWorker =
  | { type: 'init'; config: WorkerConfig }
  | { type: 'go' }
  | { type: 'pause' }
  | { type: 'stats' }
  | { type: 'fault'; faults: FaultSpec[] }
  | { type: 'stop' };

export type FromWorker =
  | { type: 'ready'; totals: WorkerTotals }
  /** `faults`: every fault of this worker whose first report has been sent so far. */
  | { type: 'stats'; totals: WorkerTotals; latenciesMs: number[]; faults: FaultRecord[] }
  | { type: 'stopped' }
  | { type: 'error'; message: string };
