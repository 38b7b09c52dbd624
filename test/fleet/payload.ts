/**
 * Report payloads for simulated agents, encoded once and re-stamped per send. A 500-rig report is
 * ~0.4 MB of JSON: encoding it per send would make the simulator, not the collector, the
 * bottleneck. Every timestamp of the template is one sentinel value, so re-stamping is a split/join.
 */
import {
  type Birth,
  encode,
  exampleRigSample,
  type InventoryRig,
  type ProbeResult,
  type Report,
  type RigSample,
} from '@hashwatch/protocol';
import { pollRound } from '../../agent/src/poller.js';
import { createSimSite } from '../../agent/src/sim/index.js';

/** A timestamp no real field holds (2023-11-14T22:13:20.123Z); replaced on every send. */
const TS_SENTINEL = 1_700_000_000_123;
const SEQ_SENTINEL = 987_654_321_987;

/** A rig sample with every timestamp set to `TS_SENTINEL` and the id replaced. */
function stamp(sample: RigSample, rig: string): RigSample {
  const copy = structuredClone(sample);
  copy.rig = rig;
  copy.ts = TS_SENTINEL;
  for (const p of copy.pools ?? []) if (p.last_share_ts !== undefined) p.last_share_ts = TS_SENTINEL;
  return copy;
}

/**
 * One rig sample as the real cgminer reader produces it from a simulated Antminer (boards, chip
 * and PCB temperatures, fans, pools): the shape the collector really receives.
 */
export async function realSampleShape(): Promise<RigSample> {
  const site = createSimSite({ rigs: 1, seed: 11 });
  await site.start();
  try {
    const round = await pollRound(site.rigTargets(), [], {
      concurrency: 1,
      rigTimeoutMs: 3000,
      probeTimeoutMs: 1000,
      probeAttempts: 1,
      now: Date.now,
    });
    const sample = round.rigs[0];
    if (!sample?.reachable) throw new Error(`The simulated rig could not be polled: ${JSON.stringify(sample?.error)}`);
    return sample;
  } finally {
    await site.stop();
  }
}

/** The protocol's example sample (no I/O): for unit tests and when a real shape is not needed. */
export function exampleSampleShape(): RigSample {
  return exampleRigSample(TS_SENTINEL, 'rig-0');
}

const PROBES: ProbeResult[] = [
  { target: 'gw', kind: 'gateway', role: 'gateway', ok: true, attempts: 3, loss_ratio: 0, latency_ms: 0.4, ts: 0 },
  { target: 'dns', kind: 'dns', role: 'dns', ok: true, attempts: 3, loss_ratio: 0, latency_ms: 11, ts: 0 },
  { target: 'internet', kind: 'tcp', role: 'internet', ok: true, attempts: 3, loss_ratio: 0, latency_ms: 24, ts: 0 },
  { target: 'pool-main', kind: 'stratum', role: 'pool', ok: true, attempts: 3, loss_ratio: 0, latency_ms: 31, ts: 0 },
];

export function rigId(i: number): string {
  return `rig-${String(i).padStart(4, '0')}`;
}

/**
 * A fault baked into a template (fault injection for the fleet benchmark):
 * - `hardwareRigs`: these rig indexes lose all hashrate while still powered and reachable, pool
 *   alive, uplink fine: every hashboard gone (the collector must say `hardware_fault`);
 * - `uplinkDown`: the host's internet and pool probes time out and every rig's pool is dead with
 *   no hashrate, rigs still reachable (the collector must say `connectivity_loss`).
 */
export interface TemplateFault {
  hardwareRigs?: readonly number[];
  uplinkDown?: boolean;
}

/** Every hashboard gone: no hashrate, still answering its API (so powered), pool alive. */
function breakHashboards(sample: RigSample): void {
  sample.hashrate_hs = 0;
  if (sample.hashrate_avg_hs !== undefined) sample.hashrate_avg_hs = 0;
  for (const b of sample.boards ?? []) {
    b.ok = false;
    if (b.chips_seen !== undefined) b.chips_seen = 0;
    if (b.hashrate_hs !== undefined) b.hashrate_hs = 0;
  }
}

/** The uplink is cut: the pool is dead (no share since the cut) and the rig has no work. */
function cutPool(sample: RigSample): void {
  sample.hashrate_hs = 0;
  if (sample.hashrate_avg_hs !== undefined) sample.hashrate_avg_hs = 0;
  for (const b of sample.boards ?? []) if (b.hashrate_hs !== undefined) b.hashrate_hs = 0;
  for (const p of sample.pools ?? []) {
    p.status = 'dead';
    delete p.last_share_ts;
  }
}

function uplinkDownProbe(p: ProbeResult): ProbeResult {
  if (p.role !== 'internet' && p.role !== 'pool') return p;
  const { latency_ms: _latency, ...rest } = p;
  return { ...rest, ok: false, loss_ratio: 1, error_class: 'timeout' };
}

/** A pre-encoded report of `rigs` samples: `render(seq, tsMs)` gives the payload for one send. */
export class ReportTemplate {
  readonly rigs: number;
  readonly bytes: number;
  private readonly parts: string[];

  constructor(
    shape: RigSample,
    rigs: number,
    bootId: string,
    intervalMs: number,
    historical = false,
    fault: TemplateFault = {},
  ) {
    this.rigs = rigs;
    const report: Report = {
      v: 1,
      boot_id: bootId,
      seq: SEQ_SENTINEL,
      ts: TS_SENTINEL,
      interval_ms: intervalMs,
      rigs: Array.from({ length: rigs }, (_, i) => stamp(shape, rigId(i))),
      probes: PROBES.map((p) => ({ ...p, ts: TS_SENTINEL })),
      agent: { spool_depth: 1, spool_bytes: 4096, spool_dropped_total: 0, poll_duration_ms: 420, errors: {} },
    };
    if (historical) report.historical = true;
    for (const i of fault.hardwareRigs ?? []) {
      const sample = report.rigs[i];
      if (!sample) throw new Error(`Bench fault: rig index ${i} is outside the report's ${rigs} rigs`);
      breakHashboards(sample);
    }
    if (fault.uplinkDown) {
      for (const sample of report.rigs) cutPool(sample);
      report.probes = report.probes.map(uplinkDownProbe);
    }
    // Validate once with the real encoder: a template the collector would reject measures nothing.
    const encoded = encode('report', report, TS_SENTINEL);
    if (!encoded.ok) throw new Error(`Bench report template is invalid: ${encoded.error.message}`);
    const [head, tail] = encoded.value.split(String(SEQ_SENTINEL)) as [string, string];
    // parts alternate: literal, ts, literal, ts, ...; the seq sits at the end of the first literal.
    this.parts = [head, ...tail.split(String(TS_SENTINEL))];
    const firstTs = this.parts[0]?.split(String(TS_SENTINEL));
    if (firstTs && firstTs.length > 1) {
      // ts fields before the seq (none in the encoder's key order, but be exact either way)
      throw new Error('Bench report template: a timestamp precedes seq; update ReportTemplate');
    }
    this.bytes = this.render(0, Date.now()).length;
  }

  /** The payload of report `seq` with every timestamp set to `tsMs`. */
  render(seq: number, tsMs: number): string {
    const ts = String(tsMs);
    let out = (this.parts[0] as string) + String(seq);
    for (let i = 1; i < this.parts.length; i++) {
      if (i > 1) out += ts;
      out += this.parts[i] as string;
    }
    return out;
  }
}

/** A birth listing `rigs` simulated rigs. */
export function birthFor(bootId: string, conn: number, rigs: number, intervalMs: number, nowMs: number): Birth {
  const inventory: InventoryRig[] = Array.from({ length: rigs }, (_, i) => ({
    id: rigId(i),
    model: 'Antminer S19 Pro',
    api: 'cgminer',
    nominal_hashrate_hs: 110e12,
    nominal_power_w: 3250,
    feed: `pdu-${Math.floor(i / 20)}`,
    rack: `r${Math.floor(i / 40)}`,
  }));
  return {
    v: 1,
    boot_id: bootId,
    conn,
    ts: nowMs,
    agent_version: 'fleet-sim',
    host: { hostname: 'fleet-sim', os: 'linux', arch: 'x64', uptime_s: 86_400 },
    interval_ms: intervalMs,
    rigs: inventory,
    probes: PROBES.map((p) => ({ target: p.target, kind: p.kind, role: p.role, address: '192.0.2.1' })),
  };
}
