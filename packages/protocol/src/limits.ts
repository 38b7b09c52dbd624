/**
 * Hard limits of the v1 wire protocol. Both sides enforce them: the agent never builds a message
 * beyond them, the collector rejects one that is. They bound memory per message, not policy.
 */
export const LIMITS = {
  /** Largest MQTT payload accepted on any hashwatch topic (1 MiB holds ~1000 full rig samples). */
  maxPayloadBytes: 1_048_576,
  /** Rig samples in one report; an agent with more rigs splits its poll across reports. */
  maxRigsPerReport: 1000,
  /** Rigs in one birth inventory. */
  maxRigsPerHost: 1000,
  /** Uplink probe results in one report, and probe targets in one birth. */
  maxProbes: 64,
  /** Temperature sensors, fans, boards, pools and firmware error codes per rig sample. */
  maxSensorsPerRig: 64,
  maxFansPerRig: 16,
  maxBoardsPerRig: 16,
  maxPoolsPerRig: 8,
  maxErrorCodesPerRig: 32,
  /** Free text (error messages, firmware strings, URLs). */
  maxTextLength: 512,
  /** Identifiers (rig ids, sensor names, probe targets). */
  maxIdLength: 64,
  /** Earliest timestamp accepted: nothing in this system predates 2020-01-01T00:00:00Z. */
  minTsMs: Date.UTC(2020, 0, 1),
  /** How far in the future (relative to the receiver's clock) a timestamp may be before rejection. */
  maxFutureMs: 24 * 3600_000,
  /** How far in the past a timestamp may be: the agent spool's longest configurable age plus slack. */
  maxPastMs: 400 * 24 * 3600_000,
  /** Upper sanity bounds of physical values: anything above is a parse bug, not a rig. */
  maxHashrateHs: 1e17,
  maxPowerW: 100_000,
  minTempC: -60,
  maxTempC: 250,
  maxFanRpm: 50_000,
  /** Largest seq and counters: JSON numbers stay exact below 2^53. */
  maxCounter: Number.MAX_SAFE_INTEGER,
} as const;

/** Site and host names: also MQTT topic segments, Prometheus label values and URL path segments. */
export const NAME_PATTERN = '^[a-z0-9][a-z0-9_-]{0,62}$';
/** Rig, sensor, board, fan and probe-target ids: a little wider (vendors use dots and colons). */
export const ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$';
/** boot_id: a UUID or any opaque token the agent draws at start. */
export const BOOT_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_-]{7,63}$';

const NAME_RE = new RegExp(NAME_PATTERN);
const ID_RE = new RegExp(ID_PATTERN);

export function isValidName(name: string): boolean {
  return NAME_RE.test(name);
}

export function isValidId(id: string): boolean {
  return ID_RE.test(id);
}
