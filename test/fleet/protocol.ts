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

export type ToWorker =
  | { type: 'init'; config: WorkerConfig }
  | { type: 'go' }
  | { type: 'pause' }
  | { type: 'stats' }
  | { type: 'stop' };

export type FromWorker =
  | { type: 'ready'; totals: WorkerTotals }
  | { type: 'stats'; totals: WorkerTotals; latenciesMs: number[] }
  | { type: 'stopped' }
  | { type: 'error'; message: string };
