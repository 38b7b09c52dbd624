/**
 * The v1 message schemas. Types are derived from these (`Static<…>`), never written twice.
 * Every object is closed (`additionalProperties: false`): an unknown key is a bug or an attack,
 * and a newer agent that needs new fields bumps `v`.
 */
import { type Static, type TSchema, Type } from '@sinclair/typebox';
import { BOOT_ID_PATTERN, ID_PATTERN, LIMITS } from './limits.js';

const closed = { additionalProperties: false } as const;

const Id = Type.String({ pattern: ID_PATTERN });
const BootId = Type.String({ pattern: BOOT_ID_PATTERN });
const Text = Type.String({ maxLength: LIMITS.maxTextLength });
const ShortText = Type.String({ maxLength: LIMITS.maxIdLength * 2 });
/** Unix milliseconds UTC; the window relative to "now" is checked after the schema. */
const TsMs = Type.Integer({ minimum: LIMITS.minTsMs, maximum: 8_640_000_000_000_000 });
const Counter = Type.Integer({ minimum: 0, maximum: LIMITS.maxCounter });
const Hashrate = Type.Number({ minimum: 0, maximum: LIMITS.maxHashrateHs });
const Power = Type.Number({ minimum: 0, maximum: LIMITS.maxPowerW });
const TempC = Type.Number({ minimum: LIMITS.minTempC, maximum: LIMITS.maxTempC });
const Version = Type.Literal(1);

/** A closed set of strings; validates as `enum` so a rejection lists the allowed values. */
function StringEnum<T extends string[]>(values: [...T]) {
  return Type.Unsafe<T[number]>({ type: 'string', enum: values });
}

function list<T extends TSchema>(item: T, maxItems: number) {
  return Type.Array(item, { maxItems });
}

/** Why the agent could not poll a rig (or a meter). Typed so the diagnosis can read it. */
export const PollErrorKind = StringEnum(['timeout', 'refused', 'unreachable', 'protocol', 'invalid_reply', 'other']);

export const PollError = Type.Object({ kind: PollErrorKind, message: Text }, closed);

/** Which subsystem a firmware error code points at. */
export const FaultKind = StringEnum(['network', 'fan', 'power', 'temperature', 'board', 'other']);

export const FirmwareError = Type.Object({ code: ShortText, kind: FaultKind, message: Text }, closed);

export const TempReading = Type.Object({ sensor: Id, temp_c: TempC }, closed);
export const FanReading = Type.Object({ fan: Id, rpm: Type.Number({ minimum: 0, maximum: LIMITS.maxFanRpm }) }, closed);

export const BoardReading = Type.Object(
  {
    board: Id,
    /** False when the firmware reports the board missing or dead. */
    ok: Type.Boolean(),
    chips_seen: Type.Optional(Counter),
    chips_expected: Type.Optional(Counter),
    hashrate_hs: Type.Optional(Hashrate),
    temp_c: Type.Optional(TempC),
    hw_errors: Type.Optional(Counter),
  },
  closed,
);

export const PoolStatus = StringEnum(['alive', 'dead', 'disabled', 'rejecting', 'unknown']);

export const PoolReading = Type.Object(
  {
    url: Text,
    status: PoolStatus,
    /** This pool is the one the rig is mining on (cgminer `Stratum Active`). */
    active: Type.Boolean(),
    last_share_ts: Type.Optional(TsMs),
    accepted: Type.Optional(Counter),
    rejected: Type.Optional(Counter),
    stale: Type.Optional(Counter),
    get_failures: Type.Optional(Counter),
    remote_failures: Type.Optional(Counter),
  },
  closed,
);

/** Why a value was dropped from a sample instead of being sent wrong (e.g. `hashrate_absurd`). */
export const SampleFlag = Type.String({ pattern: '^[a-z][a-z0-9_]{0,47}$' });

/** One poll of one rig. Absent fields mean "the rig's API does not give this", never zero. */
export const RigSample = Type.Object(
  {
    rig: Id,
    /** When the poll finished (agent clock). */
    ts: TsMs,
    /** Whether the agent could poll the rig at all. */
    reachable: Type.Boolean(),
    error: Type.Optional(PollError),
    hashrate_hs: Type.Optional(Hashrate),
    /** Hashrate averaged by the firmware since start (cgminer `MHS av`). */
    hashrate_avg_hs: Type.Optional(Hashrate),
    /** The rig's own idea of its ideal hashrate (`rate_ideal`, `Factory GHS`), if it has one. */
    hashrate_ideal_hs: Type.Optional(Hashrate),
    power_w: Type.Optional(Power),
    /** Where power_w came from: the rig's API or a metered PDU outlet. */
    power_source: Type.Optional(StringEnum(['rig', 'meter'])),
    temps: Type.Optional(list(TempReading, LIMITS.maxSensorsPerRig)),
    fans: Type.Optional(list(FanReading, LIMITS.maxFansPerRig)),
    boards: Type.Optional(list(BoardReading, LIMITS.maxBoardsPerRig)),
    hw_errors: Type.Optional(Counter),
    accepted: Type.Optional(Counter),
    rejected: Type.Optional(Counter),
    stale: Type.Optional(Counter),
    pools: Type.Optional(list(PoolReading, LIMITS.maxPoolsPerRig)),
    uptime_s: Type.Optional(Counter),
    firmware_errors: Type.Optional(list(FirmwareError, LIMITS.maxErrorCodesPerRig)),
    flags: Type.Optional(list(SampleFlag, 16)),
  },
  closed,
);

export const ProbeKind = StringEnum(['gateway', 'dns', 'tcp', 'stratum', 'http', 'icmp']);

/** What a probe target stands for: the diagnosis reasons about roles, not kinds. */
export const ProbeRole = StringEnum(['gateway', 'dns', 'internet', 'pool']);

export const ProbeErrorClass = StringEnum([
  'timeout',
  'refused',
  'unreachable',
  'dns',
  'protocol',
  'permission',
  'other',
]);

/** One probe target measured over a short window (several attempts). */
export const ProbeResult = Type.Object(
  {
    target: Id,
    kind: ProbeKind,
    role: ProbeRole,
    /** At least one attempt in the window succeeded. */
    ok: Type.Boolean(),
    attempts: Type.Integer({ minimum: 1, maximum: 100 }),
    /** Share of attempts that failed, 0..1. */
    loss_ratio: Type.Number({ minimum: 0, maximum: 1 }),
    /** Median latency of the successful attempts. */
    latency_ms: Type.Optional(Type.Number({ minimum: 0, maximum: 600_000 })),
    error_class: Type.Optional(ProbeErrorClass),
    error: Type.Optional(Text),
    ts: TsMs,
  },
  closed,
);

/** The agent's view of itself, carried in every report. */
export const AgentStats = Type.Object(
  {
    spool_depth: Counter,
    spool_bytes: Counter,
    spool_oldest_ts: Type.Optional(TsMs),
    spool_dropped_total: Counter,
    publish_latency_ms: Type.Optional(Type.Number({ minimum: 0 })),
    poll_duration_ms: Type.Number({ minimum: 0 }),
    errors: Type.Record(Type.String({ pattern: '^[a-z][a-z0-9_]{0,47}$' }), Counter, { maxProperties: 32 }),
  },
  closed,
);

export const Report = Type.Object(
  {
    v: Version,
    boot_id: BootId,
    /** Monotonic per boot_id, from 0. */
    seq: Counter,
    /** When the poll round started (agent clock). */
    ts: TsMs,
    interval_ms: Type.Integer({ minimum: 1000, maximum: 3_600_000 }),
    /** Replayed from the spool after an outage rather than sent live. */
    historical: Type.Optional(Type.Boolean()),
    rigs: list(RigSample, LIMITS.maxRigsPerReport),
    probes: list(ProbeResult, LIMITS.maxProbes),
    agent: Type.Optional(AgentStats),
  },
  closed,
);

export const RigApi = StringEnum(['cgminer', 'axeos', 'simulated']);

export const InventoryRig = Type.Object(
  {
    id: Id,
    model: ShortText,
    api: RigApi,
    nominal_hashrate_hs: Hashrate,
    nominal_power_w: Type.Optional(Power),
    /** Power feed / PDU the rig hangs on: rigs vanishing together on one feed is a power loss. */
    feed: Type.Optional(Id),
    /** Rack or LAN segment: rigs vanishing together on one switch is a LAN fault. */
    rack: Type.Optional(Id),
  },
  closed,
);

export const ProbeTarget = Type.Object({ target: Id, kind: ProbeKind, role: ProbeRole, address: Text }, closed);

export const Birth = Type.Object(
  {
    v: Version,
    boot_id: BootId,
    /** Connection counter within this boot: lets the collector ignore a stale Last Will. */
    conn: Counter,
    ts: TsMs,
    agent_version: ShortText,
    host: Type.Object(
      {
        hostname: Text,
        os: ShortText,
        arch: ShortText,
        /** Host uptime at birth: a small value after a gap means the host rebooted. */
        uptime_s: Counter,
      },
      closed,
    ),
    interval_ms: Type.Integer({ minimum: 1000, maximum: 3_600_000 }),
    rigs: list(InventoryRig, LIMITS.maxRigsPerHost),
    probes: list(ProbeTarget, LIMITS.maxProbes),
  },
  closed,
);

export const AgentState = Type.Object(
  {
    v: Version,
    boot_id: BootId,
    conn: Counter,
    ts: TsMs,
    status: StringEnum(['online', 'offline']),
    /** Set with `offline`: `lost` is the Last Will, `shutdown` a clean stop. */
    reason: Type.Optional(StringEnum(['lost', 'shutdown'])),
  },
  closed,
);

/** Inclusive seq range [from, to]. */
export const SeqRange = Type.Tuple([Counter, Counter]);

/**
 * Committed reports, per boot_id, as exact seq ranges. Exact ranges rather than a high-water mark,
 * because live reports (high seq) are committed before the older backlog they overtake.
 */
export const Ack = Type.Object(
  {
    v: Version,
    ts: TsMs,
    acks: list(Type.Object({ boot_id: BootId, ranges: list(SeqRange, 10_000) }, closed), 64),
  },
  closed,
);

/** Ask the agent to republish its birth (the collector lost its inventory, e.g. a fresh database). */
export const RebirthCommand = Type.Object({ v: Version, ts: TsMs, cmd: Type.Literal('rebirth') }, closed);

/** Ask the agent to resend spooled reports of one boot from `from_seq` (a seq gap was seen). */
export const ResendCommand = Type.Object(
  {
    v: Version,
    ts: TsMs,
    cmd: Type.Literal('resend'),
    boot_id: BootId,
    from_seq: Counter,
    to_seq: Type.Optional(Counter),
  },
  closed,
);

export const Command = Type.Union([RebirthCommand, ResendCommand]);

export const CollectorState = Type.Object(
  {
    v: Version,
    ts: TsMs,
    collector_id: ShortText,
    status: StringEnum(['online', 'offline']),
  },
  closed,
);

export type PollErrorKind = Static<typeof PollErrorKind>;
export type PollError = Static<typeof PollError>;
export type FaultKind = Static<typeof FaultKind>;
export type FirmwareError = Static<typeof FirmwareError>;
export type TempReading = Static<typeof TempReading>;
export type FanReading = Static<typeof FanReading>;
export type BoardReading = Static<typeof BoardReading>;
export type PoolStatus = Static<typeof PoolStatus>;
export type PoolReading = Static<typeof PoolReading>;
export type RigSample = Static<typeof RigSample>;
export type ProbeKind = Static<typeof ProbeKind>;
export type ProbeRole = Static<typeof ProbeRole>;
export type ProbeErrorClass = Static<typeof ProbeErrorClass>;
export type ProbeResult = Static<typeof ProbeResult>;
export type AgentStats = Static<typeof AgentStats>;
export type Report = Static<typeof Report>;
export type RigApi = Static<typeof RigApi>;
export type InventoryRig = Static<typeof InventoryRig>;
export type ProbeTarget = Static<typeof ProbeTarget>;
export type Birth = Static<typeof Birth>;
export type AgentState = Static<typeof AgentState>;
export type SeqRange = Static<typeof SeqRange>;
export type Ack = Static<typeof Ack>;
export type RebirthCommand = Static<typeof RebirthCommand>;
export type ResendCommand = Static<typeof ResendCommand>;
export type Command = Static<typeof Command>;
export type CollectorState = Static<typeof CollectorState>;
