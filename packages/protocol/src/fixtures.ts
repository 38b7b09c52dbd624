/**
 * Valid example messages of every kind, for tests on both sides and for documentation.
 * `nowMs` anchors every timestamp so callers control time.
 */
import type { Ack, AgentState, Birth, CollectorState, Command, Report, RigSample } from './schemas.js';

export const EXAMPLE_BOOT_ID = '3f1c2a9e-5b7d-4e21-9c3a-0d8e6f4b2a17';

export function exampleRigSample(nowMs: number, rig = 'rig-01'): RigSample {
  return {
    rig,
    ts: nowMs,
    reachable: true,
    hashrate_hs: 110e12,
    hashrate_avg_hs: 109.5e12,
    hashrate_ideal_hs: 110e12,
    power_w: 3250,
    power_source: 'rig',
    temps: [
      { sensor: 'board0.chip', temp_c: 71 },
      { sensor: 'board0.pcb', temp_c: 58 },
    ],
    fans: [
      { fan: 'fan0', rpm: 5400 },
      { fan: 'fan1', rpm: 5460 },
    ],
    boards: [
      { board: '0', ok: true, chips_seen: 76, chips_expected: 76, hashrate_hs: 36.7e12, temp_c: 71 },
      { board: '1', ok: true, chips_seen: 76, chips_expected: 76, hashrate_hs: 36.6e12, temp_c: 70 },
      { board: '2', ok: true, chips_seen: 76, chips_expected: 76, hashrate_hs: 36.7e12, temp_c: 72 },
    ],
    hw_errors: 12,
    accepted: 15120,
    rejected: 14,
    stale: 2,
    pools: [
      {
        url: 'stratum+tcp://pool.example.org:3333',
        status: 'alive',
        active: true,
        last_share_ts: nowMs - 3000,
        accepted: 15120,
        rejected: 14,
        stale: 2,
        get_failures: 0,
        remote_failures: 0,
      },
    ],
    uptime_s: 86_400,
  };
}

export function exampleReport(nowMs: number, rigCount = 2, seq = 0): Report {
  return {
    v: 1,
    boot_id: EXAMPLE_BOOT_ID,
    seq,
    ts: nowMs,
    interval_ms: 10_000,
    rigs: Array.from({ length: rigCount }, (_, i) => exampleRigSample(nowMs, `rig-${String(i + 1).padStart(2, '0')}`)),
    probes: [
      {
        target: 'gw',
        kind: 'gateway',
        role: 'gateway',
        ok: true,
        attempts: 3,
        loss_ratio: 0,
        latency_ms: 0.4,
        ts: nowMs,
      },
      { target: 'dns', kind: 'dns', role: 'dns', ok: true, attempts: 3, loss_ratio: 0, latency_ms: 12, ts: nowMs },
      {
        target: 'pool-main',
        kind: 'stratum',
        role: 'pool',
        ok: false,
        attempts: 3,
        loss_ratio: 1,
        error_class: 'timeout',
        error: 'No reply to mining.subscribe within 2000 ms',
        ts: nowMs,
      },
    ],
    agent: {
      spool_depth: 1,
      spool_bytes: 2048,
      spool_oldest_ts: nowMs,
      spool_dropped_total: 0,
      publish_latency_ms: 8,
      poll_duration_ms: 420,
      errors: { poll_timeout: 0 },
    },
  };
}

export function exampleBirth(nowMs: number): Birth {
  return {
    v: 1,
    boot_id: EXAMPLE_BOOT_ID,
    conn: 1,
    ts: nowMs,
    agent_version: '0.1.0',
    host: { hostname: 'farm-a-host-1', os: 'linux', arch: 'x64', uptime_s: 3600 },
    interval_ms: 10_000,
    rigs: [
      {
        id: 'rig-01',
        model: 'Antminer S19 Pro',
        api: 'cgminer',
        nominal_hashrate_hs: 110e12,
        nominal_power_w: 3250,
        feed: 'pdu-a',
        rack: 'r1',
      },
      { id: 'rig-02', model: 'Bitaxe Supra', api: 'axeos', nominal_hashrate_hs: 500e9, nominal_power_w: 12 },
    ],
    probes: [
      { target: 'gw', kind: 'gateway', role: 'gateway', address: '192.0.2.1' },
      { target: 'pool-main', kind: 'stratum', role: 'pool', address: 'pool.example.org:3333' },
    ],
  };
}

export function exampleState(nowMs: number): AgentState {
  return { v: 1, boot_id: EXAMPLE_BOOT_ID, conn: 1, ts: nowMs, status: 'offline', reason: 'lost' };
}

export function exampleAck(nowMs: number): Ack {
  return {
    v: 1,
    ts: nowMs,
    acks: [
      {
        boot_id: EXAMPLE_BOOT_ID,
        ranges: [
          [0, 41],
          [43, 43],
        ],
      },
    ],
  };
}

export function exampleCommands(nowMs: number): Command[] {
  return [
    { v: 1, ts: nowMs, cmd: 'rebirth' },
    { v: 1, ts: nowMs, cmd: 'resend', boot_id: EXAMPLE_BOOT_ID, from_seq: 42, to_seq: 42 },
  ];
}

export function exampleCollectorState(nowMs: number): CollectorState {
  return { v: 1, ts: nowMs, collector_id: 'collector-1', status: 'online' };
}
