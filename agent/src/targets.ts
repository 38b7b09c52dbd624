/**
 * What the agent polls and probes, as config schemas (YAML keys are snake_case) and the two small
 * interfaces every reader and probe implements. This file is the contract between the readers/
 * probes (agent/src/readers, agent/src/probes) and the program that schedules them.
 */
import type { ProbeResult, RigSample } from '@hashwatch/protocol';
import { type Static, Type } from '@sinclair/typebox';

const Id = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$' });
const Port = Type.Integer({ minimum: 1, maximum: 65535 });

/** A power meter outlet for rigs whose API reports no power. */
export const MeterTarget = Type.Object(
  {
    /** `http-json`: GET url, read a number at `field` (dot path) in watts. */
    kind: Type.Literal('http-json'),
    url: Type.String({ minLength: 1, maxLength: 512 }),
    /** Dot path to the watts value in the reply, e.g. `outlets.3.power_w`. */
    field: Type.String({ minLength: 1, maxLength: 128 }),
  },
  { additionalProperties: false },
);

/** One rig in the agent's config. */
export const RigTarget = Type.Object(
  {
    /** Unique id of the rig within its host; becomes the `rig` label. */
    id: Id,
    /** Which reader polls it: `cgminer` (TCP :4028 family) or `axeos` (bitaxe HTTP). */
    api: Type.Union([Type.Literal('cgminer'), Type.Literal('axeos')]),
    /** Address of the rig's API. */
    host: Type.String({ minLength: 1, maxLength: 255 }),
    /** Port of the rig's API; defaults to 4028 for cgminer and 80 for axeos. */
    port: Type.Optional(Port),
    /** Model name shown to users (e.g. "Antminer S19 Pro"). */
    model: Type.String({ minLength: 1, maxLength: 64, default: 'unknown' }),
    /** Nameplate hashrate in H/s; the diagnosis learns a baseline on top of it. */
    nominal_hashrate_hs: Type.Number({ minimum: 0, maximum: 1e17 }),
    /** Nameplate power in W. */
    nominal_power_w: Type.Optional(Type.Number({ minimum: 0, maximum: 100000 })),
    /** Power feed or PDU the rig is on (for power-loss correlation). */
    feed: Type.Optional(Id),
    /** Rack or LAN switch the rig is behind (for LAN-fault correlation). */
    rack: Type.Optional(Id),
    /** Meter to read power from when the rig's API gives none. */
    meter: Type.Optional(MeterTarget),
  },
  { additionalProperties: false },
);
export type RigTarget = Static<typeof RigTarget>;
export type MeterTarget = Static<typeof MeterTarget>;

/** One uplink probe target in the agent's config. */
export const ProbeTarget = Type.Object(
  {
    /** Unique id of the target; becomes the `target` label. */
    target: Id,
    /** gateway | dns | tcp | stratum | http | icmp */
    kind: Type.Union([
      Type.Literal('gateway'),
      Type.Literal('dns'),
      Type.Literal('tcp'),
      Type.Literal('stratum'),
      Type.Literal('http'),
      Type.Literal('icmp'),
    ]),
    /** What the target stands for in the diagnosis: gateway | dns | internet | pool. */
    role: Type.Union([Type.Literal('gateway'), Type.Literal('dns'), Type.Literal('internet'), Type.Literal('pool')]),
    /**
     * Where to probe: `host:port` for tcp/stratum, a URL for http, a host name to resolve for dns
     * (with `resolver` naming the DNS server), an address for icmp and gateway (`auto` = the
     * default route's gateway).
     */
    address: Type.String({ minLength: 1, maxLength: 512 }),
    /** DNS server `ip[:port]` for dns probes; default: the system resolver. */
    resolver: Type.Optional(Type.String({ maxLength: 64 })),
  },
  { additionalProperties: false },
);
export type ProbeTarget = Static<typeof ProbeTarget>;

/** Timing knobs shared by every reader and probe. */
export interface PollOptions {
  /** Per-rig (or per-attempt) deadline. */
  timeoutMs: number;
  /** The agent's clock, injected so tests control time. */
  now: () => number;
}

/**
 * A rig reader: one module per rig API, registered in agent/src/readers/index.ts. `poll` never
 * throws: a rig it cannot read comes back as a sample with `reachable: false` and a typed error;
 * a value it cannot trust is left out and named in `flags`.
 */
export interface RigReader {
  readonly api: RigTarget['api'];
  poll(target: RigTarget, signal: AbortSignal, options: PollOptions): Promise<RigSample>;
}

/**
 * An uplink probe: one module per probe kind, registered in agent/src/probes/index.ts. Measures
 * one target over a short window (several attempts) and never throws.
 */
export interface Probe {
  readonly kind: ProbeTarget['kind'];
  probe(target: ProbeTarget, signal: AbortSignal, options: PollOptions & { attempts: number }): Promise<ProbeResult>;
}
