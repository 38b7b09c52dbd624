/**
 * The live-view wire protocol: JSON text frames between the collector and a browser (or any
 * WebSocket client). README.md in this folder is the prose version; this file is the typed one.
 * Client messages are parsed here into values, never trusted: anything else becomes an error value.
 */
import { ID_PATTERN } from '@hashwatch/protocol';
import type { Cause, FleetState, SiteView } from '../fleet/view.js';

/** Bumped when a frame changes incompatibly; the page refuses a version it does not know. */
export const LIVE_PROTOCOL_VERSION = 1;

export interface LiveProbe {
  target: string;
  kind: string;
  role: string;
  ok: boolean;
  lossRatio: number;
  latencyMs: number | null;
  errorClass: string | null;
  ts: number;
}

/** Uplink health of a site for one probe role, rolled up over its hosts' latest probes. */
export interface LiveUplinkRole {
  role: string;
  targetsOk: number;
  targetsTotal: number;
  /** Mean loss ratio over the role's targets, 0..1. */
  lossRatio: number;
  /** Median latency of the role's successful targets. */
  latencyMs: number | null;
}

/** A site's roll-up as the fleet view computes it, plus its uplink health by probe role. */
export interface LiveSite extends SiteView {
  uplink: LiveUplinkRole[];
}

export interface LiveHost {
  site: string;
  host: string;
  online: boolean;
  offlineReason: 'lost' | 'shutdown' | null;
  presenceSinceMs: number;
  state: FleetState;
  agentVersion: string | null;
  lastReportTs: number | null;
  lastReceivedMs: number | null;
  clockSkewMs: number | null;
  spoolDepth: number | null;
  probes: LiveProbe[];
}

export interface LiveRig {
  site: string;
  host: string;
  rig: string;
  model: string;
  state: FleetState;
  stateSinceMs: number;
  evidence: string[];
  reachable: boolean | null;
  pollError: string | null;
  hashrateHs: number | null;
  expectedHashrateHs: number;
  powerW: number | null;
  maxTempC: number | null;
  boardsOk: number | null;
  boardsTotal: number | null;
  /** Whether the rig's active pool is alive; null when the rig reports no pools. */
  poolConnected: boolean | null;
  /** Agent timestamp of the latest sample. */
  sampleTs: number | null;
}

export interface LiveIncident {
  id: string;
  scope: 'rig' | 'host' | 'site';
  scopeId: string;
  site: string;
  cause: Cause;
  startMs: number;
  endMs: number | null;
  rigsAffected: number;
  deficitHashes: number;
  energyJ: number;
  evidence: string[];
}

/** One site at one summary tick: what the chart plots. */
export interface LiveSummarySite {
  site: string;
  hashrateHs: number;
  expectedHashrateHs: number;
  powerW: number;
  rigsByState: Record<FleetState, number>;
  /** Expected minus actual of the unwell rigs, by the rig's state (H/s). */
  deficitHsByCause: Partial<Record<Cause, number>>;
}

export interface LiveSummaryPoint {
  ts: number;
  sites: LiveSummarySite[];
}

/** What the client narrowed the stream to; both absent = the whole fleet. */
export interface LiveFilter {
  site?: string;
  host?: string;
}

export interface SnapshotFrame {
  type: 'snapshot';
  v: typeof LIVE_PROTOCOL_VERSION;
  /** Collector clock when the snapshot was taken. */
  nowMs: number;
  /** Why this snapshot: first on connect, after a subscribe, or a resync after the client fell behind. */
  reason: 'connect' | 'subscribe' | 'resync';
  filter: LiveFilter;
  summaryIntervalMs: number;
  sites: LiveSite[];
  hosts: LiveHost[];
  rigs: LiveRig[];
  /** Open incidents plus those closed within the history window. */
  incidents: LiveIncident[];
  /** Summary points of the last hour, oldest first. */
  history: LiveSummaryPoint[];
}

export interface DeltaFrame {
  type: 'delta';
  nowMs: number;
  sites: LiveSite[];
  hosts: LiveHost[];
  rigs: LiveRig[];
  incidents: LiveIncident[];
}

export interface SummaryFrame {
  type: 'summary';
  nowMs: number;
  point: LiveSummaryPoint;
}

export type LiveErrorReason =
  | 'binary_frame'
  | 'too_large'
  | 'malformed_json'
  | 'not_object'
  | 'unknown_type'
  | 'bad_filter'
  | 'rate_limited';

export interface ErrorFrame {
  type: 'error';
  reason: LiveErrorReason;
  message: string;
}

export type ServerFrame = SnapshotFrame | DeltaFrame | SummaryFrame | ErrorFrame;

export interface SubscribeMessage {
  type: 'subscribe';
  filter: LiveFilter;
}

export type ClientMessage = SubscribeMessage;

export type ParseResult =
  | { ok: true; message: ClientMessage }
  | { ok: false; reason: LiveErrorReason; message: string };

const idPattern = new RegExp(ID_PATTERN);

function fail(reason: LiveErrorReason, message: string): ParseResult {
  return { ok: false, reason, message };
}

/**
 * Parses one client frame. `{"type":"subscribe","site":"a"}` narrows to a site, adding `"host"`
 * narrows to a host, and `{"type":"subscribe"}` (or a bare `{}`) widens back to the whole fleet.
 */
export function parseClientMessage(data: Buffer | string, isBinary: boolean, maxBytes: number): ParseResult {
  if (isBinary) return fail('binary_frame', 'Binary frames are not accepted: send JSON text');
  const size = typeof data === 'string' ? Buffer.byteLength(data) : data.length;
  if (size > maxBytes) return fail('too_large', `Message of ${size} bytes is over the ${maxBytes}-byte limit`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(typeof data === 'string' ? data : data.toString('utf8'));
  } catch {
    return fail('malformed_json', 'Message is not valid JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return fail('not_object', 'Message must be a JSON object');
  }
  const msg = parsed as Record<string, unknown>;
  const keys = Object.keys(msg);
  if (keys.length === 0) return { ok: true, message: { type: 'subscribe', filter: {} } };
  if (msg.type !== 'subscribe') {
    const shown = typeof msg.type === 'string' ? `"${msg.type.slice(0, 40)}"` : 'missing';
    return fail('unknown_type', `Unknown message type ${shown}: the only client message is "subscribe"`);
  }
  const extra = keys.filter((k) => k !== 'type' && k !== 'site' && k !== 'host');
  if (extra.length > 0) return fail('bad_filter', `Unknown key "${extra[0]?.slice(0, 40)}" in subscribe`);
  const filter: LiveFilter = {};
  for (const key of ['site', 'host'] as const) {
    const value = msg[key];
    if (value === undefined || value === null) continue;
    if (typeof value !== 'string' || !idPattern.test(value)) {
      return fail('bad_filter', `${key} must be a site/host name matching ${ID_PATTERN}`);
    }
    filter[key] = value;
  }
  if (filter.host !== undefined && filter.site === undefined) {
    return fail('bad_filter', 'host needs site: subscribe to {"site": …, "host": …}');
  }
  return { ok: true, message: { type: 'subscribe', filter } };
}
