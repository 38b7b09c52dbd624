/**
 * Renders the collector's `/metrics` page from the current FleetView straight into bytes
 * (`ExpositionWriter`): families are written one after the other in a fixed order, each by a loop
 * over the rigs, hosts or sites it covers, so no line is ever a string of its own. The label sets of
 * rigs are encoded once and kept between scrapes (`LabelCache`). prom-client is used only for
 * process/runtime metrics (`runtime`), appended at the end. Every metric is documented in ./README.md.
 */
import { PROTOCOL_ERRORS, type ProbeResult } from '@hashwatch/protocol';
import type { Registry } from 'prom-client';
import {
  CAUSES,
  type Cause,
  type FleetState,
  type FleetView,
  type HostView,
  type RigView,
  type SiteView,
  STATES,
} from '../fleet/view.js';
import { ITEMS_PER_STEP, runInSlices, runToEnd } from '../slices.js';
import {
  addHistogram,
  ExpositionWriter,
  encode,
  encodeLabels,
  Family,
  type HistogramSnapshot,
  labelPairs,
  NO_LABELS,
} from './exposition.js';
import { LabelCache, type RigLabels } from './labels.js';

/** Ingest counters since start; the lead adapts the ingest module's own stats to this. */
export interface IngestStats {
  /** Reports validated and committed to the store. */
  acceptedTotal: number;
  /** Messages rejected, by reason code (protocol `HW_ERR_*` codes or ingest's own). */
  rejectedTotalByReason: Readonly<Record<string, number>>;
  /** Reports already stored (same host, boot_id, seq): dropped without harm. */
  duplicatesTotal: number;
  /** Reports whose agent clock differed from the collector's beyond the skew threshold. */
  skewedTotal: number;
  /** Store transactions committed. */
  batchesTotal: number;
  /** Store transactions that failed (the batch is not acknowledged, agents resend). */
  commitFailuresTotal: number;
  /** Latency of store commits (see `LatencyHistogram`). */
  commitLatency?: HistogramSnapshot;
}

export interface BrokerStats {
  /** Embedded: listening. External: connected to the broker. */
  up: boolean;
  mode: 'embedded' | 'external';
  /** Connected MQTT clients (embedded mode only). */
  clients?: number;
  /** Connections refused, by reason (bad credentials, ACL, rate limit, …). */
  refusedTotalByReason?: Readonly<Record<string, number>>;
}

export interface DiagnosisStats {
  /**
   * The collector's event loop was saturated over the last diagnosis tick, so it may be reading
   * reports late: silence judgments (and clock-offset estimates) are held until it catches up.
   */
  behind: boolean;
}

export interface StoreStats {
  /** The SQLite database is open and the last commit did not fail. */
  up: boolean;
  /** Database file plus WAL, in bytes. */
  sizeBytes?: number;
  /** Wall clock of the last successful commit (Unix ms). */
  lastCommitMs?: number;
}

/**
 * Everything `/metrics` shows. Getters are called once per render; one that throws is reported as
 * `hashwatch_metrics_source_up{source="…"} 0` and its section is left out, not the whole page.
 */
export interface MetricsSources {
  fleet: FleetView;
  ingest?: () => IngestStats;
  broker?: () => BrokerStats;
  store?: () => StoreStats;
  diagnosis?: () => DiagnosisStats;
  /** prom-client registry with process/runtime metrics (see `createRuntimeRegistry`). */
  runtime?: Registry;
}

export interface RenderOptions {
  /** false drops every series with a `rig` label (host and site aggregates stay). */
  perRig: boolean;
  /** Collector clock, for ages and lags. */
  nowMs: number;
}

const seconds = (ms: number) => ms / 1000;

// Code-unit order: stable across locales and cheaper than localeCompare on 100k keys.
const byKey = <T>(a: [string, T], b: [string, T]) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);

/** Every family of the page, in page order (the order of this object). */
function createFamilies() {
  const g = (name: string, help: string) => new Family(name, 'gauge', help);
  const c = (name: string, help: string) => new Family(name, 'counter', help);
  return {
    // Per rig.
    rigInfo: g('hashwatch_rig_info', 'Rig inventory: model, API and (when configured) power feed and rack. Always 1.'),
    rigState: g('hashwatch_rig_state', 'Diagnosed state of the rig: 1 for the current state, 0 for the others.'),
    rigReachable: g(
      'hashwatch_rig_reachable',
      'Whether the agent could poll the rig in its latest report (1) or not (0).',
    ),
    rigHashrate: g('hashwatch_rig_hashrate_hashes_per_second', 'Hashrate the rig reported in its latest sample.'),
    rigExpected: g(
      'hashwatch_rig_expected_hashrate_hashes_per_second',
      'Hashrate the diagnosis expects from the rig now (nominal or learned baseline).',
    ),
    rigPower: g('hashwatch_rig_power_watts', 'Power draw of the rig, from its API or a metered PDU outlet.'),
    rigTemp: g('hashwatch_rig_temperature_celsius', 'Temperature per sensor of the rig.'),
    rigFan: g('hashwatch_rig_fan_rpm', 'Fan speed per fan of the rig, in revolutions per minute.'),
    rigAccepted: c('hashwatch_rig_shares_accepted_total', 'Shares the pool accepted, as counted by the rig firmware.'),
    rigRejected: c('hashwatch_rig_shares_rejected_total', 'Shares the pool rejected, as counted by the rig firmware.'),
    rigStale: c('hashwatch_rig_shares_stale_total', 'Stale shares, as counted by the rig firmware.'),
    rigHwErrors: c('hashwatch_rig_hardware_errors_total', 'Hardware errors (bad nonces) counted by the rig firmware.'),
    rigPool: g(
      'hashwatch_rig_pool_connected',
      'Whether the rig has an active pool connection that is alive (1) or not (0).',
    ),
    rigSampleTs: g(
      'hashwatch_rig_last_sample_timestamp_seconds',
      'Agent clock of the latest sample of the rig, as a Unix timestamp.',
    ),
    // Per host.
    agentUp: g('hashwatch_agent_up', 'MQTT presence of the agent: 1 online, 0 offline (Last Will or clean stop).'),
    agentInfo: g('hashwatch_agent_info', 'Version of the agent on the host. Always 1.'),
    hostState: g('hashwatch_host_state', 'Diagnosed state of the host: 1 for the current state, 0 for the others.'),
    hostRigs: g('hashwatch_host_rigs', 'Rigs of the host by diagnosed state.'),
    hostHashrate: g(
      'hashwatch_host_hashrate_hashes_per_second',
      'Sum of the hashrate of the reachable rigs of the host.',
    ),
    hostExpected: g(
      'hashwatch_host_expected_hashrate_hashes_per_second',
      'Sum of the expected hashrate of the rigs of the host.',
    ),
    hostPower: g('hashwatch_host_power_watts', 'Sum of the power draw of the reachable rigs of the host.'),
    reportLag: g(
      'hashwatch_agent_report_lag_seconds',
      'Time since the collector received the newest live report of the agent.',
    ),
    clockSkew: g(
      'hashwatch_agent_clock_skew_seconds',
      'Collector clock minus agent clock at the newest live report (positive: agent clock behind).',
    ),
    spoolDepth: g('hashwatch_agent_spool_depth', 'Reports in the agent spool not yet acknowledged by the collector.'),
    spoolBytes: g('hashwatch_agent_spool_bytes', 'Size of the agent spool.'),
    spoolOldest: g(
      'hashwatch_agent_spool_oldest_age_seconds',
      'Age of the oldest unacknowledged report in the agent spool (0 when empty).',
    ),
    spoolDropped: c(
      'hashwatch_agent_spool_dropped_total',
      'Reports the agent dropped from its spool (full, too old): data lost for good.',
    ),
    pollDuration: g(
      'hashwatch_agent_poll_duration_seconds',
      'Duration of the agent last poll round over all its rigs.',
    ),
    publishLatency: g(
      'hashwatch_agent_publish_latency_seconds',
      'Latency from report to collector acknowledgement of the agent latest acknowledged report.',
    ),
    agentErrors: c('hashwatch_agent_errors_total', 'Errors the agent counted, by kind.'),
    probeSuccess: g(
      'hashwatch_uplink_probe_success',
      'Whether at least one attempt of the uplink probe succeeded (1) or not (0).',
    ),
    probeLatency: g(
      'hashwatch_uplink_probe_latency_seconds',
      'Median latency of the successful attempts of the uplink probe.',
    ),
    probeLoss: g('hashwatch_uplink_probe_loss_ratio', 'Share of the attempts of the uplink probe that failed, 0 to 1.'),
    // Per site.
    siteState: g('hashwatch_site_state', 'Diagnosed state of the site: 1 for the current state, 0 for the others.'),
    siteRigs: g('hashwatch_site_rigs', 'Rigs of the site by diagnosed state.'),
    siteHashrate: g(
      'hashwatch_site_hashrate_hashes_per_second',
      'Sum of the hashrate of the reachable rigs of the site.',
    ),
    siteExpected: g(
      'hashwatch_site_expected_hashrate_hashes_per_second',
      'Sum of the expected hashrate of the rigs of the site.',
    ),
    sitePower: g('hashwatch_site_power_watts', 'Sum of the power draw of the reachable rigs of the site.'),
    siteHosts: g('hashwatch_site_hosts', 'Agent hosts known at the site.'),
    siteHostsOnline: g('hashwatch_site_hosts_online', 'Agent hosts of the site whose agent is online.'),
    incidentsOpen: g('hashwatch_incidents_open', 'Open incidents by site and cause.'),
    deficit: c(
      'hashwatch_hashrate_deficit_hashes_total',
      'Hashrate deficit (expected minus actual, integrated) since the collector started, by cause.',
    ),
    // Collector health.
    ingestAccepted: c('hashwatch_ingest_reports_accepted_total', 'Reports validated and committed to the store.'),
    ingestRejected: c('hashwatch_ingest_messages_rejected_total', 'Messages rejected by ingest, by reason code.'),
    ingestDuplicates: c(
      'hashwatch_ingest_reports_duplicate_total',
      'Reports received again after they were stored (redelivery or replay): dropped without harm.',
    ),
    ingestSkewed: c(
      'hashwatch_ingest_reports_skewed_total',
      'Reports whose agent clock differed from the collector clock beyond the skew threshold.',
    ),
    ingestBatches: c('hashwatch_ingest_batches_total', 'Store transactions committed by ingest.'),
    ingestCommitFailures: c('hashwatch_ingest_commit_failures_total', 'Store transactions that failed to commit.'),
    ingestCommit: new Family('hashwatch_ingest_commit_duration_seconds', 'histogram', 'Duration of store commits.'),
    brokerUp: g(
      'hashwatch_broker_up',
      'Embedded broker listening, or connected to the external broker (1), or not (0).',
    ),
    brokerClients: g('hashwatch_broker_clients', 'MQTT clients connected to the embedded broker.'),
    brokerRefused: c(
      'hashwatch_broker_connections_refused_total',
      'MQTT connections refused by the broker, by reason.',
    ),
    storeUp: g('hashwatch_store_up', 'SQLite store open and its last commit succeeded (1), or not (0).'),
    storeSize: g('hashwatch_store_size_bytes', 'Size of the SQLite database including its WAL.'),
    storeLastCommit: g(
      'hashwatch_store_last_commit_timestamp_seconds',
      'Wall clock of the last successful store commit, as a Unix timestamp.',
    ),
    diagnosisBehind: g(
      'hashwatch_diagnosis_behind',
      'The collector is saturated and may read reports late (1): silence judgments are held until it catches up.',
    ),
    sourceUp: g('hashwatch_metrics_source_up', 'Whether a stats source answered during this scrape (1) or threw (0).'),
  };
}

/** Families hold only their encoded names and headers, so one set serves every scrape. */
const F = createFamilies();

/** `,state="…"` and `,cause="…"` pairs, appended to a rig, host or site label set. */
const STATE_PAIRS = Object.fromEntries(STATES.map((s) => [s, encode(`,${labelPairs([['state', s]])}`)])) as Record<
  FleetState,
  Uint8Array
>;
const CAUSE_PAIRS = Object.fromEntries(CAUSES.map((c) => [c, encode(`,${labelPairs([['cause', c]])}`)])) as Record<
  Cause,
  Uint8Array
>;

/** Per-host sums over its rigs (and its rig count by state). */
interface HostAgg {
  site: string;
  host: string;
  hashrateHs: number;
  expectedHs: number;
  powerW: number;
  rigsByState: Record<FleetState, number>;
}

/** A host as the page shows it: its view (absent for rigs whose host never reported), sums and labels. */
interface HostEntry {
  view: HostView | undefined;
  agg: HostAgg;
  /** `site="…",host="…"`. */
  base: Uint8Array;
  /** The host's uplink probes in target order, one per target, with their extra labels. */
  probes: ProbeLabels[];
}

/** An uplink probe and its `,target="…",kind="…",role="…"` labels. */
interface ProbeLabels {
  probe: ProbeResult;
  extra: Uint8Array;
}

const emptyByState = () => Object.fromEntries(STATES.map((s) => [s, 0])) as Record<FleetState, number>;

/** Whether one of the rig's pools is the active one and alive (a loop: this runs once per rig). */
function poolConnected(pools: NonNullable<RigView['sample']>['pools']): number | undefined {
  if (!pools || pools.length === 0) return undefined;
  for (const p of pools) if (p.active && p.status === 'alive') return 1;
  return 0;
}

/**
 * Writes one per-rig family: `write` adds the series of one rig (none, one or several). Yields
 * every `ITEMS_PER_STEP` rigs: a point where the render may pause.
 */
function* eachRig(
  out: ExpositionWriter,
  family: Family,
  rigs: readonly RigLabels[],
  write: (r: RigLabels) => void,
): Generator<void, void, void> {
  out.openFamily(family);
  for (let i = 0; i < rigs.length; i++) {
    if (i % ITEMS_PER_STEP === ITEMS_PER_STEP - 1) yield;
    write(rigs[i] as RigLabels);
  }
  out.closeFamily();
}

/**
 * Writes a family with one sample per rig; `value` returns undefined for a rig without that value
 * (no sample yet, or a field the rig did not report), which then has no series.
 */
function rigFamily(
  out: ExpositionWriter,
  family: Family,
  rigs: readonly RigLabels[],
  value: (r: RigView) => number | undefined,
): Generator<void, void, void> {
  return eachRig(out, family, rigs, (r) => {
    const v = value(r.view);
    if (v !== undefined) out.add(r.base, v);
  });
}

/** Writes a family with one sample per `{name,value}` item of each rig (temperatures, fans). */
function rigItemFamily<T>(
  out: ExpositionWriter,
  family: Family,
  rigs: readonly RigLabels[],
  items: (r: RigView) => readonly T[] | undefined,
  label: (item: T) => Uint8Array,
  name: (item: T) => string,
  value: (item: T) => number,
): Generator<void, void, void> {
  const seen = new Set<string>();
  return eachRig(out, family, rigs, (r) => {
    const list = items(r.view);
    if (!list) return;
    seen.clear();
    for (const item of list) {
      // Firmware may list a sensor twice; a duplicate series would make the whole scrape invalid.
      const n = name(item);
      if (seen.has(n)) continue;
      seen.add(n);
      out.add(r.base, value(item), label(item));
    }
  });
}

function* writeRigs(
  out: ExpositionWriter,
  rigs: readonly RigLabels[],
  labels: LabelCache,
): Generator<void, void, void> {
  yield* eachRig(out, F.rigInfo, rigs, (r) => out.add(r.info, 1));
  yield* eachRig(out, F.rigState, rigs, (r) => {
    for (const s of STATES) out.add(r.base, s === r.view.state ? 1 : 0, STATE_PAIRS[s]);
  });
  yield* rigFamily(out, F.rigReachable, rigs, (r) => r.sample && (r.sample.reachable ? 1 : 0));
  yield* rigFamily(out, F.rigHashrate, rigs, (r) => r.sample?.hashrate_hs);
  yield* rigFamily(out, F.rigExpected, rigs, (r) => r.expectedHashrateHs);
  yield* rigFamily(out, F.rigPower, rigs, (r) => r.sample?.power_w);
  yield* rigItemFamily(
    out,
    F.rigTemp,
    rigs,
    (r) => r.sample?.temps,
    (t) => labels.pair('sensor', t.sensor),
    (t) => t.sensor,
    (t) => t.temp_c,
  );
  yield* rigItemFamily(
    out,
    F.rigFan,
    rigs,
    (r) => r.sample?.fans,
    (f) => labels.pair('fan', f.fan),
    (f) => f.fan,
    (f) => f.rpm,
  );
  yield* rigFamily(out, F.rigAccepted, rigs, (r) => r.sample?.accepted);
  yield* rigFamily(out, F.rigRejected, rigs, (r) => r.sample?.rejected);
  yield* rigFamily(out, F.rigStale, rigs, (r) => r.sample?.stale);
  yield* rigFamily(out, F.rigHwErrors, rigs, (r) => r.sample?.hw_errors);
  yield* rigFamily(out, F.rigPool, rigs, (r) => poolConnected(r.sample?.pools));
  yield* rigFamily(out, F.rigSampleTs, rigs, (r) => r.sample && seconds(r.sample.ts));
}

/** Writes a family with at most one sample per host; undefined: no series for that host. */
function hostFamily(
  out: ExpositionWriter,
  family: Family,
  hosts: readonly HostEntry[],
  value: (h: HostEntry) => number | undefined,
): void {
  out.family(family, () => {
    for (const h of hosts) {
      const v = value(h);
      if (v !== undefined) out.add(h.base, v);
    }
  });
}

/** Writes a family with one sample per state and host (one-hot states, rigs by state). */
function hostByStateFamily(
  out: ExpositionWriter,
  family: Family,
  hosts: readonly HostEntry[],
  value: (h: HostEntry, state: FleetState) => number,
): void {
  out.family(family, () => {
    for (const h of hosts) for (const s of STATES) out.add(h.base, value(h, s), STATE_PAIRS[s]);
  });
}

/** A host's probes in target order with their labels; a target listed twice counts once. */
function probeLabels(h: HostView): ProbeLabels[] {
  const seen = new Set<string>();
  const out: ProbeLabels[] = [];
  for (const p of [...h.probes].sort((x, y) => (x.target < y.target ? -1 : x.target > y.target ? 1 : 0))) {
    if (seen.has(p.target)) continue;
    seen.add(p.target);
    const pairs = labelPairs([
      ['target', p.target],
      ['kind', p.kind],
      ['role', p.role],
    ]);
    out.push({ probe: p, extra: encode(`,${pairs}`) });
  }
  return out;
}

/** Writes the per-host families; yields between two families (a point where the render may pause). */
function* writeHosts(out: ExpositionWriter, hosts: readonly HostEntry[], nowMs: number): Generator<void, void, void> {
  hostFamily(out, F.agentUp, hosts, (h) => h.view && (h.view.online ? 1 : 0));
  yield;
  out.family(F.agentInfo, () => {
    for (const { view, base } of hosts) {
      if (view?.agentVersion === undefined) continue;
      out.add(base, 1, encode(`,${labelPairs([['version', view.agentVersion]])}`));
    }
  });
  yield;
  hostByStateFamily(out, F.hostState, hosts, (h, s) => (s === (h.view?.state ?? 'unknown') ? 1 : 0));
  yield;
  hostByStateFamily(out, F.hostRigs, hosts, (h, s) => h.agg.rigsByState[s]);
  yield;
  hostFamily(out, F.hostHashrate, hosts, (h) => h.agg.hashrateHs);
  yield;
  hostFamily(out, F.hostExpected, hosts, (h) => h.agg.expectedHs);
  yield;
  hostFamily(out, F.hostPower, hosts, (h) => h.agg.powerW);
  yield;
  hostFamily(out, F.reportLag, hosts, ({ view }) =>
    view?.lastReceivedMs === undefined ? undefined : Math.max(0, seconds(nowMs - view.lastReceivedMs)),
  );
  yield;
  hostFamily(out, F.clockSkew, hosts, ({ view }) =>
    view?.clockSkewMs === undefined ? undefined : seconds(view.clockSkewMs),
  );
  yield;
  // Agent self-stats, from the agent's newest report.
  hostFamily(out, F.spoolDepth, hosts, ({ view }) => view?.agent?.spool_depth);
  yield;
  hostFamily(out, F.spoolBytes, hosts, ({ view }) => view?.agent?.spool_bytes);
  yield;
  hostFamily(out, F.spoolOldest, hosts, ({ view }) => {
    const a = view?.agent;
    if (!a) return undefined;
    // An empty spool reports age 0 rather than no series, so `> x` alerts resolve instead of going stale.
    return a.spool_oldest_ts === undefined ? 0 : Math.max(0, seconds(nowMs - a.spool_oldest_ts));
  });
  yield;
  hostFamily(out, F.spoolDropped, hosts, ({ view }) => view?.agent?.spool_dropped_total);
  yield;
  hostFamily(out, F.pollDuration, hosts, ({ view }) => view?.agent && seconds(view.agent.poll_duration_ms));
  yield;
  hostFamily(out, F.publishLatency, hosts, ({ view }) => {
    const ms = view?.agent?.publish_latency_ms;
    return ms === undefined ? undefined : seconds(ms);
  });
  yield;
  out.family(F.agentErrors, () => {
    for (const { view, base } of hosts) {
      const errors = view?.agent?.errors;
      if (!errors) continue;
      for (const kind of Object.keys(errors).sort()) {
        out.add(base, errors[kind] ?? 0, encode(`,${labelPairs([['kind', kind]])}`));
      }
    }
  });
  yield;
  // Uplink probes: one series per host and target.
  const probeFamily = (family: Family, value: (p: ProbeResult) => number | undefined) =>
    out.family(family, () => {
      for (const h of hosts) {
        for (const { probe, extra } of h.probes) {
          const v = value(probe);
          if (v !== undefined) out.add(h.base, v, extra);
        }
      }
    });
  probeFamily(F.probeSuccess, (p) => (p.ok ? 1 : 0));
  yield;
  probeFamily(F.probeLatency, (p) => (p.latency_ms === undefined ? undefined : seconds(p.latency_ms)));
  yield;
  probeFamily(F.probeLoss, (p) => p.loss_ratio);
}

/** Writes the per-site families from `siteViews` (`FleetView.sites()`) and the fleet's incidents. */
function writeSites(out: ExpositionWriter, fleet: FleetView, siteViews: SiteView[]): void {
  const sites = siteViews
    .sort((a, b) => (a.site < b.site ? -1 : a.site > b.site ? 1 : 0))
    .map((s) => ({ site: s, base: encodeLabels([['site', s.site]]) }));
  const open = new Map<string, Map<string, number>>();
  for (const inc of fleet.incidents.values()) {
    if (inc.endMs !== undefined) continue;
    let bySite = open.get(inc.site);
    if (!bySite) {
      bySite = new Map();
      open.set(inc.site, bySite);
    }
    bySite.set(inc.cause, (bySite.get(inc.cause) ?? 0) + 1);
  }
  // Sites with open incidents but no rig or host left still show their incidents.
  const siteNames = new Set(sites.map((s) => s.site.site));
  for (const name of open.keys()) siteNames.add(name);

  out.family(F.siteState, () => {
    for (const { site, base } of sites) {
      for (const st of STATES) out.add(base, st === site.state ? 1 : 0, STATE_PAIRS[st]);
    }
  });
  out.family(F.siteRigs, () => {
    for (const { site, base } of sites) for (const st of STATES) out.add(base, site.rigsByState[st], STATE_PAIRS[st]);
  });
  const siteFamily = (family: Family, value: (s: SiteView) => number) =>
    out.family(family, () => {
      for (const { site, base } of sites) out.add(base, value(site));
    });
  siteFamily(F.siteHashrate, (s) => s.hashrateHs);
  siteFamily(F.siteExpected, (s) => s.expectedHashrateHs);
  siteFamily(F.sitePower, (s) => s.powerW);
  siteFamily(F.siteHosts, (s) => s.hostsTotal);
  siteFamily(F.siteHostsOnline, (s) => s.hostsOnline);
  out.family(F.incidentsOpen, () => {
    for (const name of [...siteNames].sort()) {
      const base = encodeLabels([['site', name]]);
      for (const cause of CAUSES) out.add(base, open.get(name)?.get(cause) ?? 0, CAUSE_PAIRS[cause]);
    }
  });
  out.family(F.deficit, () => {
    for (const cause of CAUSES) out.add(encodeLabels([['cause', cause]]), fleet.deficitHashesByCause[cause]);
  });
}

/** Calls a stats getter; a throwing source is reported (in `up`), not fatal to the page. */
function read<T>(up: [string, number][], source: string, getter: (() => T) | undefined): T | undefined {
  if (!getter) return undefined;
  try {
    const value = getter();
    up.push([source, 1]);
    return value;
  } catch {
    up.push([source, 0]);
    return undefined;
  }
}

function sortedEntries(record: Readonly<Record<string, number>>): [string, number][] {
  return Object.entries(record).sort(byKey);
}

/** Writes a family of one unlabelled sample, or nothing when `value` is undefined. */
function single(out: ExpositionWriter, family: Family, value: number | undefined): void {
  out.family(family, () => {
    if (value !== undefined) out.add(NO_LABELS, value);
  });
}

/** Writes a family with one sample per `label` value, in the given order. */
function byLabel(out: ExpositionWriter, family: Family, label: string, entries: [string, number][]): void {
  out.family(family, () => {
    for (const [value, n] of entries) out.add(encodeLabels([[label, value]]), n);
  });
}

function writeCollector(out: ExpositionWriter, sources: MetricsSources): void {
  // Every getter is called once, in this order, before anything is written: its families come
  // first on the page, `hashwatch_metrics_source_up` last.
  const up: [string, number][] = [];
  const ingest = read(up, 'ingest', sources.ingest);
  const broker = read(up, 'broker', sources.broker);
  const store = read(up, 'store', sources.store);
  const diagnosis = read(up, 'diagnosis', sources.diagnosis);

  single(out, F.ingestAccepted, ingest?.acceptedTotal);
  if (ingest) {
    // Every protocol code is present from the start, so rate() sees the first rejection.
    const reasons: Record<string, number> = Object.fromEntries(Object.keys(PROTOCOL_ERRORS).map((k) => [k, 0]));
    Object.assign(reasons, ingest.rejectedTotalByReason);
    byLabel(out, F.ingestRejected, 'reason', sortedEntries(reasons));
  }
  single(out, F.ingestDuplicates, ingest?.duplicatesTotal);
  single(out, F.ingestSkewed, ingest?.skewedTotal);
  single(out, F.ingestBatches, ingest?.batchesTotal);
  single(out, F.ingestCommitFailures, ingest?.commitFailuresTotal);
  const commitLatency = ingest?.commitLatency;
  if (commitLatency) out.family(F.ingestCommit, () => addHistogram(out, NO_LABELS, commitLatency));
  if (broker) byLabel(out, F.brokerUp, 'mode', [[broker.mode, broker.up ? 1 : 0]]);
  single(out, F.brokerClients, broker?.clients);
  byLabel(out, F.brokerRefused, 'reason', sortedEntries(broker?.refusedTotalByReason ?? {}));
  single(out, F.storeUp, store && (store.up ? 1 : 0));
  single(out, F.storeSize, store?.sizeBytes);
  single(out, F.storeLastCommit, store?.lastCommitMs === undefined ? undefined : seconds(store.lastCommitMs));
  single(out, F.diagnosisBehind, diagnosis && (diagnosis.behind ? 1 : 0));
  byLabel(out, F.sourceUp, 'source', up);
}

/**
 * Sums every rig into its host (and lists hosts that have no rig), in `rigs` order: floating-point
 * sums depend on it, so it is the page's rig order when per-rig series are on. Yields every
 * `ITEMS_PER_STEP` rigs, as the per-rig families do: at 50,000 rigs the walk was ~8 ms of the
 * ~30 ms the page took before its first pause.
 */
function* hostEntries(fleet: FleetView, rigs: readonly RigView[]): Generator<void, HostEntry[], void> {
  const aggs = new Map<string, HostAgg>();
  const agg = (site: string, host: string): HostAgg => {
    const key = `${site}/${host}`;
    let a = aggs.get(key);
    if (!a) {
      a = { site, host, hashrateHs: 0, expectedHs: 0, powerW: 0, rigsByState: emptyByState() };
      aggs.set(key, a);
    }
    return a;
  };
  for (const h of fleet.hosts.values()) agg(h.site, h.host);
  let last: HostAgg | undefined;
  for (let i = 0; i < rigs.length; i++) {
    if (i % ITEMS_PER_STEP === ITEMS_PER_STEP - 1) yield;
    const r = rigs[i] as RigView;
    // Rigs come host by host in key order: most belong to the previous rig's host (no key to build).
    const a = last !== undefined && last.site === r.site && last.host === r.host ? last : agg(r.site, r.host);
    last = a;
    a.rigsByState[r.state]++;
    a.expectedHs += r.expectedHashrateHs;
    // Same rule as FleetView.sites(): a rig that could not be polled contributes nothing "now".
    if (r.sample?.reachable) {
      a.hashrateHs += r.sample.hashrate_hs ?? 0;
      a.powerW += r.sample.power_w ?? 0;
    }
  }
  return [...aggs.entries()].sort(byKey).map(([, a]) => {
    const view = fleet.getHost(a.site, a.host);
    const base = encodeLabels([
      ['site', a.site],
      ['host', a.host],
    ]);
    return { view, agg: a, base, probes: view ? probeLabels(view) : [] };
  });
}

/**
 * Writes the hashwatch part of the page into `out`, synchronously and deterministically (no
 * process metrics). Families come in a fixed order; series in label order. Pass the same `labels`
 * cache to every scrape of a fleet to skip re-encoding and re-sorting the rigs (the HTTP handler
 * does); a fresh cache gives the same bytes, only slower.
 */
export function writeFleetMetrics(
  out: ExpositionWriter,
  sources: MetricsSources,
  options: RenderOptions,
  labels: LabelCache = new LabelCache(),
): void {
  runToEnd(fleetMetricsSteps(out, sources, options, labels)); // no pause: the whole page in one go
}

/** `writeFleetMetrics` as steps: it yields where a sliced render may give the event loop a turn. */
function* fleetMetricsSteps(
  out: ExpositionWriter,
  sources: MetricsSources,
  options: RenderOptions,
  labels: LabelCache,
): Generator<void, void, void> {
  const { fleet } = sources;
  // Ordering rigs only matters for per-rig lines; aggregates then follow the same order. The list
  // is taken at the start: rigs that arrive during a sliced render wait for the next scrape.
  const rigs = options.perRig ? yield* labels.steps(fleet.rigs) : undefined;
  const hosts = yield* hostEntries(fleet, rigs ? rigs.map((r) => r.view) : [...fleet.rigs.values()]);
  if (rigs) yield* writeRigs(out, rigs, labels);
  yield* writeHosts(out, hosts, options.nowMs);
  writeSites(out, fleet, yield* fleet.siteSteps());
  writeCollector(out, sources);
}

/**
 * Writes the full `/metrics` page into `out`: hashwatch families, then process/runtime metrics when
 * a runtime registry is given. The walks over every rig (labels, host and site sums, the per-rig
 * families) are done in slices of about `SLICE_MS`, with a turn of the event loop between them: a
 * rig's values may change between slices (as they may between any two scrapes), the set of rigs
 * and the page's layout do not. `out` must not be reset or reused before the Promise settles.
 */
export async function writeMetrics(
  out: ExpositionWriter,
  sources: MetricsSources,
  options: RenderOptions,
  labels: LabelCache = new LabelCache(),
): Promise<void> {
  await runInSlices(fleetMetricsSteps(out, sources, options, labels));
  const runtime = sources.runtime;
  if (runtime) out.text(await runtime.metrics());
}

/**
 * The hashwatch part of the page as a string: what the golden-file test compares. Each call
 * renders from scratch; a server should use `writeFleetMetrics` with a kept writer and cache.
 */
export function renderFleetMetrics(sources: MetricsSources, options: RenderOptions): string {
  const out = new ExpositionWriter();
  writeFleetMetrics(out, sources, options);
  return out.toString();
}

/** The full `/metrics` page as a string (see `writeMetrics`). */
export async function renderMetrics(sources: MetricsSources, options: RenderOptions): Promise<string> {
  const out = new ExpositionWriter();
  await writeMetrics(out, sources, options);
  return out.toString();
}
