/**
 * The fleet simulator: many simulated agents spread over a few worker processes, speaking the real
 * protocol to a real broker. `start()` forks the workers and connects every host (birth + online),
 * `go()` starts the reports, `stats()` collects counters and the report → ack latencies since the
 * previous call, `stop()` says `offline`/`shutdown` for every host and ends the workers.
 * `injectFaults()` makes chosen hosts send a fault from their next report on (hardware fault on
 * some rigs, or a cut uplink); `stats().faults` then gives the `ts` of each first faulty report.
 *
 *   const fleet = new Fleet({ url, hosts: 250, rigsPerHost: 200, intervalMs: 10_000, shape });
 *   await fleet.start(); fleet.go(); ...; const s = await fleet.stats(); await fleet.stop();
 */
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { RigSample } from '@hashwatch/protocol';
import type { FaultRecord, FaultSpec, FromWorker, ToWorker, WorkerConfig, WorkerTotals } from './protocol.js';

const WORKER = fileURLToPath(new URL('./worker.ts', import.meta.url));

export interface FleetOptions {
  url: string;
  site?: string;
  /** Spread hosts round-robin over this many sites (default 1). */
  sites?: number;
  hostPrefix?: string;
  hosts: number;
  rigsPerHost: number;
  intervalMs: number;
  /** `interval` (default): one report per host per interval. `flood`: keep `maxInflight` unacked. */
  mode?: 'interval' | 'flood';
  maxInflight?: number;
  /** Worker processes (default 1); hosts are split evenly. */
  processes?: number;
  backdateMs?: number;
  shape: RigSample;
  protocolVersion?: 4 | 5;
  username?: string;
  password?: string;
  connectConcurrency?: number;
  /** Longest wait for workers to connect, and for any IPC answer. */
  timeoutMs?: number;
}

export interface FleetStats extends WorkerTotals {
  latenciesMs: number[];
  /** Every injected fault whose first report has been sent (cumulative, not since the last call). */
  faults: FaultRecord[];
}

interface WorkerHandle {
  proc: ChildProcess;
  waiters: Array<{ type: FromWorker['type']; resolve: (m: FromWorker) => void; reject: (e: Error) => void }>;
}

export class Fleet {
  private readonly o: FleetOptions;
  private workers: WorkerHandle[] = [];

  constructor(options: FleetOptions) {
    this.o = options;
  }

  private next<T extends FromWorker['type']>(w: WorkerHandle, type: T): Promise<Extract<FromWorker, { type: T }>> {
    const timeoutMs = this.o.timeoutMs ?? 120_000;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`Fleet worker ${w.proc.pid} sent no ${type} within ${timeoutMs} ms`)),
        timeoutMs,
      );
      w.waiters.push({
        type,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m as Extract<FromWorker, { type: T }>);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
    });
  }

  private post(w: WorkerHandle, msg: ToWorker): void {
    if (w.proc.connected) w.proc.send(msg);
  }

  /** Forks the workers and connects every host; resolves when all are connected. */
  async start(): Promise<void> {
    const n = Math.max(1, Math.min(this.o.processes ?? 1, this.o.hosts));
    const per = Math.ceil(this.o.hosts / n);
    const ready: Promise<unknown>[] = [];
    for (let i = 0; i < n; i++) {
      const first = i * per;
      const hosts = Math.min(per, this.o.hosts - first);
      if (hosts <= 0) break;
      const proc = fork(WORKER, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      const w: WorkerHandle = { proc, waiters: [] };
      proc.on('message', (m: FromWorker) => {
        if (m.type === 'error') {
          for (const x of w.waiters.splice(0)) x.reject(new Error(`Fleet worker failed: ${m.message}`));
          return;
        }
        const i = w.waiters.findIndex((x) => x.type === m.type);
        if (i >= 0) w.waiters.splice(i, 1)[0]?.resolve(m);
      });
      proc.on('exit', (code) => {
        for (const x of w.waiters.splice(0)) x.reject(new Error(`Fleet worker exited with ${code}`));
      });
      this.workers.push(w);
      const config: WorkerConfig = {
        url: this.o.url,
        site: this.o.site ?? 'fleet',
        sites: this.o.sites ?? 1,
        hostPrefix: this.o.hostPrefix ?? 'h',
        firstHost: first,
        hosts,
        rigsPerHost: this.o.rigsPerHost,
        intervalMs: this.o.intervalMs,
        mode: this.o.mode ?? 'interval',
        maxInflight: this.o.maxInflight ?? 1,
        backdateMs: this.o.backdateMs ?? 0,
        shape: this.o.shape,
        protocolVersion: this.o.protocolVersion ?? 4,
        connectConcurrency: this.o.connectConcurrency ?? 50,
        ...(this.o.username ? { username: this.o.username } : {}),
        ...(this.o.password ? { password: this.o.password } : {}),
      };
      ready.push(this.next(w, 'ready'));
      this.post(w, { type: 'init', config });
    }
    await Promise.all(ready);
  }

  /** Process ids of the worker processes (to measure the simulator's own CPU). */
  pids(): number[] {
    return this.workers.flatMap((w) => (w.proc.pid !== undefined ? [w.proc.pid] : []));
  }

  /** The name of host `i` (0-based over the whole fleet), as the workers name it. */
  hostName(i: number): string {
    return `${this.o.hostPrefix ?? 'h'}${i}`;
  }

  /** The site of host `i`: hosts are spread round-robin over the sites. */
  siteOf(i: number): string {
    const site = this.o.site ?? 'fleet';
    const sites = this.o.sites ?? 1;
    return sites > 1 ? `${site}${i % sites}` : site;
  }

  /** Each named host sends its fault from its next report on, until the end of the run. */
  injectFaults(faults: FaultSpec[]): void {
    for (const w of this.workers) this.post(w, { type: 'fault', faults });
  }

  go(): void {
    for (const w of this.workers) this.post(w, { type: 'go' });
  }

  pause(): void {
    for (const w of this.workers) this.post(w, { type: 'pause' });
  }

  /** Counters since start, and the latencies since the previous call, over every worker. */
  async stats(): Promise<FleetStats> {
    const answers = await Promise.all(
      this.workers.map((w) => {
        const p = this.next(w, 'stats');
        this.post(w, { type: 'stats' });
        return p;
      }),
    );
    const out: FleetStats = {
      hosts: 0,
      connected: 0,
      sent: 0,
      acked: 0,
      ackedSamples: 0,
      inflight: 0,
      rejectedInbound: 0,
      rebirths: 0,
      resendsAsked: 0,
      disconnects: 0,
      reportBytes: 0,
      latenciesMs: [],
      faults: [],
    };
    for (const a of answers) {
      for (const k of Object.keys(a.totals) as Array<keyof WorkerTotals>) {
        if (k === 'reportBytes') out.reportBytes = a.totals.reportBytes;
        else out[k] += a.totals[k];
      }
      for (const l of a.latenciesMs) out.latenciesMs.push(l);
      for (const f of a.faults) out.faults.push(f);
    }
    return out;
  }

  /** Clean stop of every host, then of the workers (killed if they do not exit in time). */
  async stop(): Promise<void> {
    const workers = this.workers;
    this.workers = [];
    await Promise.all(
      workers.map(async (w) => {
        if (w.proc.exitCode !== null || w.proc.signalCode !== null) return;
        const exited = new Promise<void>((r) => w.proc.once('exit', () => r()));
        const p = this.next(w, 'stopped').catch(() => {});
        this.post(w, { type: 'stop' });
        const timer = setTimeout(() => w.proc.kill('SIGKILL'), 10_000);
        await p;
        await exited;
        clearTimeout(timer);
      }),
    );
  }
}
