/**
 * Renders the collector's `/metrics` page from the current FleetView in one pass: every rig, host
 * and site is visited once, its sample lines appended to per-family strings, and the page is
 * concatenated once. prom-client is used only for process/runtime metrics (`runtime`), appended at the end.
 * Every metric is documented in ./README.md.
 */
import { PROTOCOL_ERRORS } from '@hashwatch/protocol';
import type { Registry } from 'prom-client';
import { CAUSES, type FleetState, type FleetView, type HostView, type RigView, STATES } from '../fleet/view.js';
import { addHistogram, Family, type HistogramSnapshot, labelPairs } from './exposition.js';

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
    sourceUp: g('hashwatch_metrics_source_up', 'Whether a stats source answered during this scrape (1) or threw (0).'),
  };
}

type Families = ReturnType<typeof createFamilies>;

interface HostAgg {
  site: string;
  host: string;
  hashrateHs: number;
  expectedHs: number;
  powerW: number;
  rigsByState: Record<FleetState, number>;
}

const emptyByState = () => Object.fromEntries(STATES.map((s) => [s, 0])) as Record<FleetState, number>;

function oneHot(family: Family, base: string, current: FleetState): void {
  for (const s of STATES) family.add(`${base},state="${s}"`, s === current ? 1 : 0);
}

function renderRig(f: Families, r: RigView, base: string): void {
  const info: [string, string][] = [
    ['model', r.model],
    ['api', r.api],
  ];
  if (r.feed !== undefined) info.push(['feed', r.feed]);
  if (r.rack !== undefined) info.push(['rack', r.rack]);
  f.rigInfo.add(`${base},${labelPairs(info)}`, 1);
  oneHot(f.rigState, base, r.state);
  f.rigExpected.add(base, r.expectedHashrateHs);
  const s = r.sample;
  if (!s) return;
  f.rigReachable.add(base, s.reachable ? 1 : 0);
  f.rigSampleTs.add(base, seconds(s.ts));
  if (s.hashrate_hs !== undefined) f.rigHashrate.add(base, s.hashrate_hs);
  if (s.power_w !== undefined) f.rigPower.add(base, s.power_w);
  // Firmware may list a sensor twice; a duplicate series would make the whole scrape invalid.
  const seen = new Set<string>();
  for (const t of s.temps ?? []) {
    if (seen.has(t.sensor)) continue;
    seen.add(t.sensor);
    f.rigTemp.add(`${base},${labelPairs([['sensor', t.sensor]])}`, t.temp_c);
  }
  seen.clear();
  for (const fan of s.fans ?? []) {
    if (seen.has(fan.fan)) continue;
    seen.add(fan.fan);
    f.rigFan.add(`${base},${labelPairs([['fan', fan.fan]])}`, fan.rpm);
  }
  if (s.accepted !== undefined) f.rigAccepted.add(base, s.accepted);
  if (s.rejected !== undefined) f.rigRejected.add(base, s.rejected);
  if (s.stale !== undefined) f.rigStale.add(base, s.stale);
  if (s.hw_errors !== undefined) f.rigHwErrors.add(base, s.hw_errors);
  if (s.pools && s.pools.length > 0) {
    f.rigPool.add(base, s.pools.some((p) => p.active && p.status === 'alive') ? 1 : 0);
  }
}

function renderHost(f: Families, h: HostView | undefined, agg: HostAgg, base: string, nowMs: number): void {
  oneHot(f.hostState, base, h?.state ?? 'unknown');
  for (const s of STATES) f.hostRigs.add(`${base},state="${s}"`, agg.rigsByState[s]);
  f.hostHashrate.add(base, agg.hashrateHs);
  f.hostExpected.add(base, agg.expectedHs);
  f.hostPower.add(base, agg.powerW);
  if (!h) return;
  f.agentUp.add(base, h.online ? 1 : 0);
  if (h.agentVersion !== undefined) f.agentInfo.add(`${base},${labelPairs([['version', h.agentVersion]])}`, 1);
  if (h.lastReceivedMs !== undefined) f.reportLag.add(base, Math.max(0, seconds(nowMs - h.lastReceivedMs)));
  if (h.clockSkewMs !== undefined) f.clockSkew.add(base, seconds(h.clockSkewMs));
  const a = h.agent;
  if (a) {
    f.spoolDepth.add(base, a.spool_depth);
    f.spoolBytes.add(base, a.spool_bytes);
    // An empty spool reports age 0 rather than no series, so `> x` alerts resolve instead of going stale.
    f.spoolOldest.add(base, a.spool_oldest_ts === undefined ? 0 : Math.max(0, seconds(nowMs - a.spool_oldest_ts)));
    f.spoolDropped.add(base, a.spool_dropped_total);
    f.pollDuration.add(base, seconds(a.poll_duration_ms));
    if (a.publish_latency_ms !== undefined) f.publishLatency.add(base, seconds(a.publish_latency_ms));
    for (const kind of Object.keys(a.errors).sort()) {
      f.agentErrors.add(`${base},${labelPairs([['kind', kind]])}`, a.errors[kind] ?? 0);
    }
  }
  const seen = new Set<string>();
  for (const p of [...h.probes].sort((x, y) => (x.target < y.target ? -1 : x.target > y.target ? 1 : 0))) {
    if (seen.has(p.target)) continue;
    seen.add(p.target);
    const labels = `${base},${labelPairs([
      ['target', p.target],
      ['kind', p.kind],
      ['role', p.role],
    ])}`;
    f.probeSuccess.add(labels, p.ok ? 1 : 0);
    if (p.latency_ms !== undefined) f.probeLatency.add(labels, seconds(p.latency_ms));
    f.probeLoss.add(labels, p.loss_ratio);
  }
}

function renderSites(f: Families, fleet: FleetView): void {
  const sites = fleet.sites().sort((a, b) => (a.site < b.site ? -1 : a.site > b.site ? 1 : 0));
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
  const siteNames = new Set(sites.map((s) => s.site));
  for (const name of open.keys()) siteNames.add(name);
  for (const s of sites) {
    const base = labelPairs([['site', s.site]]);
    oneHot(f.siteState, base, s.state);
    for (const st of STATES) f.siteRigs.add(`${base},state="${st}"`, s.rigsByState[st]);
    f.siteHashrate.add(base, s.hashrateHs);
    f.siteExpected.add(base, s.expectedHashrateHs);
    f.sitePower.add(base, s.powerW);
    f.siteHosts.add(base, s.hostsTotal);
    f.siteHostsOnline.add(base, s.hostsOnline);
  }
  for (const name of [...siteNames].sort()) {
    const base = labelPairs([['site', name]]);
    for (const cause of CAUSES) f.incidentsOpen.add(`${base},cause="${cause}"`, open.get(name)?.get(cause) ?? 0);
  }
  for (const cause of CAUSES) f.deficit.add(`cause="${cause}"`, fleet.deficitHashesByCause[cause]);
}

/** Calls a stats getter; a throwing source is reported, not fatal to the page. */
function read<T>(f: Families, source: string, getter: (() => T) | undefined): T | undefined {
  if (!getter) return undefined;
  try {
    const value = getter();
    f.sourceUp.add(`source="${source}"`, 1);
    return value;
  } catch {
    f.sourceUp.add(`source="${source}"`, 0);
    return undefined;
  }
}

function sortedEntries(record: Readonly<Record<string, number>>): [string, number][] {
  return Object.entries(record).sort(byKey);
}

function renderCollector(f: Families, sources: MetricsSources): void {
  const ingest = read(f, 'ingest', sources.ingest);
  if (ingest) {
    f.ingestAccepted.add('', ingest.acceptedTotal);
    // Every protocol code is present from the start, so rate() sees the first rejection.
    const reasons: Record<string, number> = Object.fromEntries(Object.keys(PROTOCOL_ERRORS).map((k) => [k, 0]));
    Object.assign(reasons, ingest.rejectedTotalByReason);
    for (const [reason, n] of sortedEntries(reasons)) f.ingestRejected.add(labelPairs([['reason', reason]]), n);
    f.ingestDuplicates.add('', ingest.duplicatesTotal);
    f.ingestSkewed.add('', ingest.skewedTotal);
    f.ingestBatches.add('', ingest.batchesTotal);
    f.ingestCommitFailures.add('', ingest.commitFailuresTotal);
    if (ingest.commitLatency) addHistogram(f.ingestCommit, '', ingest.commitLatency);
  }
  const broker = read(f, 'broker', sources.broker);
  if (broker) {
    f.brokerUp.add(labelPairs([['mode', broker.mode]]), broker.up ? 1 : 0);
    if (broker.clients !== undefined) f.brokerClients.add('', broker.clients);
    for (const [reason, n] of sortedEntries(broker.refusedTotalByReason ?? {})) {
      f.brokerRefused.add(labelPairs([['reason', reason]]), n);
    }
  }
  const store = read(f, 'store', sources.store);
  if (store) {
    f.storeUp.add('', store.up ? 1 : 0);
    if (store.sizeBytes !== undefined) f.storeSize.add('', store.sizeBytes);
    if (store.lastCommitMs !== undefined) f.storeLastCommit.add('', seconds(store.lastCommitMs));
  }
}

/**
 * The hashwatch part of the page, synchronously and deterministically (no process metrics):
 * what the golden-file test compares. Families come in a fixed order; series in label order.
 */
export function renderFleetMetrics(sources: MetricsSources, options: RenderOptions): string {
  const f = createFamilies();
  const { fleet } = sources;
  const hostAggs = new Map<string, HostAgg>();
  const agg = (site: string, host: string): HostAgg => {
    const key = `${site}/${host}`;
    let a = hostAggs.get(key);
    if (!a) {
      a = { site, host, hashrateHs: 0, expectedHs: 0, powerW: 0, rigsByState: emptyByState() };
      hostAggs.set(key, a);
    }
    return a;
  };
  for (const h of fleet.hosts.values()) agg(h.site, h.host);

  // Sorting only matters for the order of per-rig lines; aggregates do not care.
  const rigs = options.perRig ? [...fleet.rigs.entries()].sort(byKey).map(([, r]) => r) : fleet.rigs.values();
  for (const r of rigs) {
    const a = agg(r.site, r.host);
    a.rigsByState[r.state]++;
    a.expectedHs += r.expectedHashrateHs;
    // Same rule as FleetView.sites(): a rig that could not be polled contributes nothing "now".
    if (r.sample?.reachable) {
      a.hashrateHs += r.sample.hashrate_hs ?? 0;
      a.powerW += r.sample.power_w ?? 0;
    }
    if (options.perRig) {
      renderRig(
        f,
        r,
        labelPairs([
          ['site', r.site],
          ['host', r.host],
          ['rig', r.rig],
        ]),
      );
    }
  }
  for (const [, a] of [...hostAggs.entries()].sort(byKey)) {
    const base = labelPairs([
      ['site', a.site],
      ['host', a.host],
    ]);
    renderHost(f, fleet.getHost(a.site, a.host), a, base, options.nowMs);
  }
  renderSites(f, fleet);
  renderCollector(f, sources);

  let page = '';
  for (const family of Object.values(f)) page += family.text();
  return page;
}

/**
 * The full `/metrics` page: hashwatch families, then process/runtime metrics when a runtime
 * registry is given (prom-client renders asynchronously, hence the Promise in that case only).
 */
export function renderMetrics(sources: MetricsSources, options: RenderOptions): Promise<string> | string {
  const text = renderFleetMetrics(sources, options);
  const runtime = sources.runtime;
  if (!runtime) return text;
  return runtime.metrics().then((extra) => text + extra);
}
