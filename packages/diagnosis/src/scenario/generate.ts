/**
 * Turns a scenario into what the collector would hear (births, presence, live and spooled reports,
 * timer ticks, in delivery order) plus the ground truth per rig and interval. Deterministic: all
 * noise comes from a PRNG seeded by the scenario.
 */
import type { Birth, PoolReading, ProbeResult, Report, RigSample } from '@hashwatch/protocol';
import type { Presence } from '../diagnoser.js';
import type { State } from '../types.js';
import type { EventSpec, HostSpec, ScenarioSpec } from './format.js';

export type Delivery =
  | { atMs: number; kind: 'birth'; site: string; host: string; birth: Birth }
  | { atMs: number; kind: 'report'; site: string; host: string; report: Report }
  | { atMs: number; kind: 'presence'; site: string; host: string; presence: Presence }
  | { atMs: number; kind: 'tick' };

/** Ground truth of one rig over one interval [ts, ts + intervalMs) of true time. */
export interface TruthSlot {
  rig: string;
  ts: number;
  label: State;
  /** False for the interval an event edge falls into (its truth is mixed) and ambiguity bands. */
  scored: boolean;
  expectedHs: number;
  /** Hashrate that reached a pool. */
  effectiveHs: number;
}

export interface InjectedIncident {
  index: number;
  kind: EventSpec['kind'];
  cause: State;
  startMs: number;
  endMs: number;
  rigs: string[];
  /** The agents went silent: detection means leaving `ok` (to `unknown`) in real time. */
  silent: boolean;
}

export interface GeneratedScenario {
  spec: ScenarioSpec;
  t0: number;
  intervalMs: number;
  deliveries: Delivery[];
  truth: TruthSlot[];
  incidents: InjectedIncident[];
}

/** mulberry32: small, fast, good enough for noise; seeded so a scenario replays exactly. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface SimRig {
  key: string;
  site: string;
  host: string;
  id: string;
  nominalHs: number;
  nominalPowerW: number;
  power: HostSpec['power'];
  factor: number;
  feed: string | undefined;
  rack: string | undefined;
  pools: number;
  /** When the rig last powered on (uptime origin). */
  bootMs: number;
  appearMs: number;
}

interface SimHost {
  site: string;
  id: string;
  spec: HostSpec;
  rigs: SimRig[];
  boot: number;
  conn: number;
  seq: number;
  hostBootMs: number;
  skewMs: number;
  spool: Report[];
}

const T0 = Date.UTC(2026, 0, 5, 0, 0, 0);
const WILL_DELAY_MS = 45_000;
/** How long after its pool path fails a rig declares its pool dead. */
const POOL_DEAD_MS = 20_000;

/** The cause each event stands for, as DESIGN.md names it. */
function causeOf(e: EventSpec): State {
  switch (e.kind) {
    case 'uplink_cut':
    case 'dns_fail':
      return 'connectivity_loss';
    case 'pool_down':
      return e.failover ? 'ok' : 'pool_outage';
    case 'board_dead':
      return (e.boards ?? 1) >= 2 ? 'hardware_fault' : 'degraded';
    case 'fan_stop':
    case 'overheat':
      return 'hardware_fault';
    case 'throttle':
    case 'degrade_slow':
      return 'degraded';
    case 'feed_cut':
    case 'site_power':
      return 'power_loss';
    case 'lan_switch':
      return 'unreachable';
    case 'agent_crash':
    case 'host_reboot':
    case 'new_rig':
      return 'ok';
  }
}

/** Which truth wins when events overlap on one rig: what the rig would show an operator. */
const PRIORITY: State[] = [
  'power_loss',
  'unreachable',
  'hardware_fault',
  'connectivity_loss',
  'pool_outage',
  'degraded',
  'ok',
];

export function generate(spec: ScenarioSpec): GeneratedScenario {
  const rand = prng(spec.seed);
  const gauss = () => {
    const u = Math.max(rand(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
  };
  const intervalMs = spec.interval_s * 1000;
  const endMs = T0 + spec.duration_min * 60_000;
  const events = spec.events.map((e, index) => ({
    e,
    index,
    startMs: T0 + e.at_min * 60_000,
    endMs: e.for_min === undefined ? endMs : T0 + (e.at_min + e.for_min) * 60_000,
  }));

  const hosts: SimHost[] = [];
  for (const site of spec.sites) {
    for (const hs of site.hosts) {
      const h: SimHost = {
        site: site.id,
        id: hs.id,
        spec: hs,
        rigs: [],
        boot: 1,
        conn: 1,
        seq: 0,
        hostBootMs: T0 - 30 * 86_400_000,
        skewMs: hs.skew_s * 1000,
        spool: [],
      };
      const block = Math.max(1, Math.ceil(hs.rigs / Math.max(1, hs.racks.length)));
      for (let i = 0; i < hs.rigs; i++) {
        const id = `${hs.id}-r${String(i + 1).padStart(2, '0')}`;
        h.rigs.push({
          key: `${site.id}/${hs.id}/${id}`,
          site: site.id,
          host: hs.id,
          id,
          nominalHs: hs.nominal_ths * 1e12,
          nominalPowerW: hs.nominal_power_w,
          power: hs.power,
          factor: 0.95 + rand() * 0.08,
          feed: hs.feeds.length > 0 ? hs.feeds[i % hs.feeds.length] : undefined,
          rack: hs.racks.length > 0 ? hs.racks[Math.floor(i / block)] : undefined,
          pools: hs.pools,
          bootMs: T0 - 7 * 86_400_000,
          appearMs: T0 - 60_000,
        });
      }
      hosts.push(h);
    }
  }
  // new_rig events add a rig that did not exist before.
  for (const ev of events.filter((x) => x.e.kind === 'new_rig')) {
    const h = hosts.find((x) => `${x.site}/${x.id}` === ev.e.host);
    if (!h) throw new Error(`new_rig: unknown host ${ev.e.host}`);
    const id = `${h.id}-new${ev.index}`;
    h.rigs.push({
      key: `${h.site}/${h.id}/${id}`,
      site: h.site,
      host: h.id,
      id,
      nominalHs: h.spec.nominal_ths * 1e12,
      nominalPowerW: h.spec.nominal_power_w,
      power: h.spec.power,
      factor: 0.93 + rand() * 0.04,
      feed: h.rigs[0]?.feed,
      rack: h.rigs[0]?.rack,
      pools: h.spec.pools,
      bootMs: ev.startMs,
      appearMs: ev.startMs,
    });
  }

  const affects = (e: EventSpec, r: SimRig): boolean => {
    if (e.rigs) return e.rigs.includes(r.key);
    if (e.feed) return r.feed === e.feed && (!e.site || e.site === r.site);
    if (e.rack) return r.rack === e.rack && (!e.site || e.site === r.site);
    if (e.host) return e.host === `${r.site}/${r.host}`;
    if (e.site) return e.site === r.site;
    return false;
  };
  const active = (r: SimRig, t: number) => events.filter((x) => t >= x.startMs && t < x.endMs && affects(x.e, r));
  const hostEvents = (h: SimHost, t: number) =>
    events.filter(
      (x) =>
        t >= x.startMs &&
        t < x.endMs &&
        (x.e.host === `${h.site}/${h.id}` || (x.e.site === h.site && !x.e.rigs && !x.e.feed && !x.e.rack)),
    );
  /**
   * Why the agent of h is silent at t, if it is. An agent (or host) that is down records nothing,
   * even inside an uplink cut; one that is up behind a cut spools.
   */
  const silentWhy = (h: SimHost, t: number) => {
    const hev = hostEvents(h, t);
    const down = hev.find((x) => x.e.kind === 'site_power' || x.e.kind === 'agent_crash' || x.e.kind === 'host_reboot');
    if (down) return down;
    return spec.collector === 'remote' ? hev.find((x) => x.e.kind === 'uplink_cut') : undefined;
  };
  /**
   * The cut that hides a restart of h's agent (or host) from an off-site collector: a restart that
   * begins and ends inside the cut sends no Will and no birth (the agent is cut off already); the
   * agent comes back at the cut's end with its new boot, and its spool holds both boots' reports.
   */
  const hidingCut = (h: SimHost, x: (typeof events)[number]) => {
    if (spec.collector !== 'remote') return undefined;
    if ((x.e.kind !== 'agent_crash' && x.e.kind !== 'host_reboot') || x.e.host !== `${h.site}/${h.id}`)
      return undefined;
    return events.find(
      (c) => c.e.kind === 'uplink_cut' && c.e.site === h.site && c.startMs < x.startMs && x.endMs < c.endMs,
    );
  };

  const deliveries: Delivery[] = [];
  const truth: TruthSlot[] = [];
  const birthOf = (h: SimHost, t: number): Birth => ({
    v: 1,
    boot_id: `boot-${h.id}-${String(h.boot).padStart(4, '0')}`,
    conn: h.conn,
    ts: t + h.skewMs,
    agent_version: 'sim',
    host: { hostname: h.id, os: 'linux', arch: 'x64', uptime_s: Math.max(0, Math.round((t - h.hostBootMs) / 1000)) },
    interval_ms: intervalMs,
    rigs: h.rigs
      .filter((r) => r.appearMs <= t)
      .map((r) => ({
        id: r.id,
        model: 'Antminer S19',
        api: 'simulated' as const,
        nominal_hashrate_hs: r.nominalHs,
        ...(r.power !== 'none' ? { nominal_power_w: r.nominalPowerW } : {}),
        ...(r.feed ? { feed: r.feed } : {}),
        ...(r.rack ? { rack: r.rack } : {}),
      })),
    probes: [],
  });
  for (const h of hosts)
    deliveries.push({ atMs: T0 - 5000, kind: 'birth', site: h.site, host: h.id, birth: birthOf(h, T0 - 5000) });
  for (const ev of events.filter((x) => x.e.kind === 'new_rig')) {
    const h = hosts.find((x) => `${x.site}/${x.id}` === ev.e.host) as SimHost;
    deliveries.push({
      atMs: ev.startMs + 1,
      kind: 'birth',
      site: h.site,
      host: h.id,
      birth: birthOf(h, ev.startMs + 1),
    });
  }

  // Silences: Will (or clean stop), return birth, spool replay.
  for (const h of hosts) {
    for (const x of events) {
      const isSilence =
        (x.e.kind === 'site_power' && x.e.site === h.site) ||
        ((x.e.kind === 'agent_crash' || x.e.kind === 'host_reboot') && x.e.host === `${h.site}/${h.id}`) ||
        (x.e.kind === 'uplink_cut' && spec.collector === 'remote' && x.e.site === h.site);
      if (!isSilence || hidingCut(h, x)) continue; // a hidden restart comes back with its cut
      const bootId = `boot-${h.id}-${String(h.boot).padStart(4, '0')}`;
      const lost = x.e.kind !== 'host_reboot';
      const willAt = x.startMs + (lost ? WILL_DELAY_MS : 1000);
      if (willAt < x.endMs) {
        deliveries.push({
          atMs: willAt,
          kind: 'presence',
          site: h.site,
          host: h.id,
          presence: { status: 'offline', reason: lost ? 'lost' : 'shutdown', boot_id: bootId, conn: h.conn },
        });
      }
      const restarts = events.filter((y) => hidingCut(h, y) === x);
      if (x.e.kind !== 'uplink_cut' || restarts.length > 0) {
        h.boot += Math.max(1, restarts.length);
        h.conn = 1;
      } else {
        h.conn += 1;
      }
      if (x.e.kind === 'site_power' || x.e.kind === 'host_reboot') h.hostBootMs = x.endMs - 20_000;
      for (const y of restarts) if (y.e.kind === 'host_reboot') h.hostBootMs = y.endMs - 20_000;
      const back = x.endMs + 2000;
      const birth = birthOf(h, back);
      deliveries.push({ atMs: back, kind: 'birth', site: h.site, host: h.id, birth });
      deliveries.push({
        atMs: back + 1,
        kind: 'presence',
        site: h.site,
        host: h.id,
        presence: { status: 'online', boot_id: birth.boot_id, conn: h.conn },
      });
    }
  }

  // Boot ids per host over time, for reports: recompute from the silence events' ends.
  const bootAt = (h: SimHost, t: number) => {
    let boot = 1;
    for (const x of events) {
      const applies =
        (x.e.kind === 'site_power' && x.e.site === h.site) ||
        ((x.e.kind === 'agent_crash' || x.e.kind === 'host_reboot') && x.e.host === `${h.site}/${h.id}`);
      if (applies && t >= x.endMs) boot += 1;
    }
    return `boot-${h.id}-${String(boot).padStart(4, '0')}`;
  };
  const seqByBoot = new Map<string, number>();
  const lastShare = new Map<string, number>();

  for (let k = 0; T0 + k * intervalMs < endMs; k++) {
    const slotMs = T0 + k * intervalMs;
    deliveries.push({ atMs: slotMs + intervalMs / 2, kind: 'tick' });
    for (const h of hosts) {
      const t = slotMs + Math.floor(rand() * 400);
      const hev = hostEvents(h, t);
      const cut = hev.find((x) => x.e.kind === 'uplink_cut');
      const dns = hev.find((x) => x.e.kind === 'dns_fail');
      const poolDown = hev.find((x) => x.e.kind === 'pool_down');
      const glitchProbe = rand() < spec.probe_glitch_prob ? Math.floor(rand() * 4) : -1;
      const probe = (
        target: string,
        kind: ProbeResult['kind'],
        role: ProbeResult['role'],
        fail: false | 'timeout' | 'dns',
      ): ProbeResult => {
        const base = { target, kind, role, attempts: 3, ts: t + h.skewMs };
        return fail
          ? {
              ...base,
              ok: false,
              loss_ratio: 1,
              error_class: fail,
              error: fail === 'dns' ? 'NXDOMAIN / SERVFAIL' : 'timed out',
            }
          : { ...base, ok: true, loss_ratio: 0, latency_ms: 5 + rand() * 20 };
      };
      const probes: ProbeResult[] = [
        probe('gw', 'gateway', 'gateway', false),
        probe('dns', 'dns', 'dns', cut || dns || glitchProbe === 0 ? 'timeout' : false),
        probe('inet', 'tcp', 'internet', cut || glitchProbe === 1 ? 'timeout' : false),
        probe('pool-main', 'stratum', 'pool', cut || poolDown || glitchProbe === 2 ? 'timeout' : dns ? 'dns' : false),
      ];
      if (h.spec.pools > 1) probes.push(probe('pool-backup', 'stratum', 'pool', cut ? 'timeout' : dns ? 'dns' : false));

      const samples: RigSample[] = [];
      for (const r of h.rigs) {
        if (r.appearMs > slotMs) continue;
        const evs = active(r, t);
        // The interval an edge falls into has mixed truth, and the first report after an edge shows
        // the rig's own lag (a pool takes seconds to be declared dead): neither is scored.
        const near = (edgeMs: number) => edgeMs > slotMs - intervalMs && edgeMs < slotMs + intervalMs;
        const edge = events.some((x) => affects(x.e, r) && (near(x.startMs) || (x.endMs < endMs && near(x.endMs))));
        let label: State = 'ok';
        let scored = !edge;
        for (const x of evs) {
          let c = causeOf(x.e);
          if (x.e.kind === 'degrade_slow') {
            const ramp = rampOf(x, t);
            c = ramp < 0.9 ? 'degraded' : 'ok';
            if (Math.abs(ramp - 0.9) < 0.03) scored = false;
          }
          if (PRIORITY.indexOf(c) < PRIORITY.indexOf(label)) label = c;
        }
        const powerOff = evs.some((x) => x.e.kind === 'feed_cut' || x.e.kind === 'site_power');
        if (powerOff)
          r.bootMs = Math.max(
            r.bootMs,
            evs.find((x) => x.e.kind === 'feed_cut' || x.e.kind === 'site_power')?.endMs ?? t,
          );
        const lan = evs.some((x) => x.e.kind === 'lan_switch');
        const lostFor = (ms: number) => {
          const since = (ev: (typeof events)[number] | undefined) => ev !== undefined && t - ev.startMs >= ms;
          return since(cut) || since(dns) || (since(poolDown) && !poolDown?.e.failover);
        };
        const poolsDead = lostFor(POOL_DEAD_MS);
        // Out of work: the ASICs stop hashing while the control board, fans and PSU still draw a
        // few percent of nameplate. A rig that answers its API with that draw is idle, not unpowered.
        const idle = lostFor(spec.work_drain_s * 1000);
        const failover = poolDown?.e.failover === true && h.spec.pools > 1;

        let f = r.factor;
        const boards = [true, true, true];
        let fanStopped = false;
        let hot = 0;
        for (const x of evs) {
          if (x.e.kind === 'board_dead') {
            const n = x.e.boards ?? 1;
            for (let b = 0; b < n; b++) boards[b] = false;
            f *= (3 - n) / 3;
          } else if (x.e.kind === 'fan_stop') {
            fanStopped = true;
            f = 0;
            hot = 96;
          } else if (x.e.kind === 'overheat') {
            f *= 0.1;
            hot = 99;
          } else if (x.e.kind === 'throttle') {
            f *= 0.7;
            hot = 91;
          } else if (x.e.kind === 'degrade_slow') {
            f *= rampOf(x, t);
          }
        }
        if (idle) f = 0;
        if (rand() < spec.glitch_prob) f *= 0.3;
        // An idle rig's hashrate average reads ~0, not exactly 0.
        const hashrate = idle ? r.nominalHs * 0.003 * rand() : Math.max(0, r.nominalHs * f * (1 + 0.015 * gauss()));
        const expected = r.nominalHs * r.factor;
        const lost =
          label === 'connectivity_loss' || label === 'pool_outage' || label === 'power_loss' || label === 'unreachable';
        truth.push({
          rig: r.key,
          ts: slotMs,
          label,
          scored,
          expectedHs: expected,
          effectiveHs: lost || powerOff || lan ? 0 : hashrate,
        });

        const agentTs = t + h.skewMs;
        if (powerOff || lan) {
          const s: RigSample = {
            rig: r.id,
            ts: agentTs,
            reachable: false,
            error: { kind: 'timeout', message: 'No reply from :4028 within 5000 ms' },
          };
          if (r.power === 'meter') {
            s.power_w = powerOff ? 0 : r.nominalPowerW * 0.5;
            s.power_source = 'meter';
          }
          samples.push(s);
          continue;
        }
        const share = lastShare.get(r.key) ?? agentTs - 3000;
        const newShare = poolsDead ? share : agentTs - Math.floor(rand() * 5000);
        lastShare.set(r.key, newShare);
        const pools: PoolReading[] = [
          {
            url: 'stratum+tcp://pool.example.org:3333',
            status: poolsDead || failover ? 'dead' : 'alive',
            active: !failover,
            last_share_ts: failover ? share : newShare,
          },
        ];
        if (r.pools > 1) {
          pools.push({
            url: 'stratum+tcp://backup.example.net:3333',
            status: poolsDead ? 'dead' : 'alive',
            active: failover,
            last_share_ts: newShare,
          });
        }
        const chipTemp = hot > 0 ? hot + rand() * 2 : 70 + rand() * 4;
        const s: RigSample = {
          rig: r.id,
          ts: agentTs,
          reachable: true,
          hashrate_hs: hashrate,
          hashrate_ideal_hs: r.nominalHs,
          temps: [{ sensor: 'chip', temp_c: Math.round(chipTemp * 10) / 10 }],
          fans: [
            { fan: 'fan0', rpm: fanStopped ? 0 : 5400 + Math.floor(rand() * 100) },
            { fan: 'fan1', rpm: 5400 + Math.floor(rand() * 100) },
          ],
          boards: boards.map((ok, b) => ({ board: String(b), ok })),
          pools,
          uptime_s: Math.max(0, Math.round((t - r.bootMs) / 1000)),
        };
        if (r.power !== 'none') {
          const share = idle ? spec.idle_power_ratio : f > 0.05 ? 0.97 + 0.03 * f : 0.55;
          s.power_w = r.nominalPowerW * share * (1 + 0.01 * gauss());
          s.power_source = r.power;
        }
        samples.push(s);
      }

      const why = silentWhy(h, t);
      if (why && why.e.kind !== 'uplink_cut') continue; // the agent (or its host) is down: nothing recorded
      const bootId = bootAt(h, t);
      const seq = seqByBoot.get(bootId) ?? 0;
      seqByBoot.set(bootId, seq + 1);
      const report: Report = {
        v: 1,
        boot_id: bootId,
        seq,
        ts: t + h.skewMs,
        interval_ms: intervalMs,
        rigs: samples,
        probes,
      };
      if (why) {
        h.spool.push({ ...report, historical: true });
        continue;
      }
      deliveries.push({ atMs: t + 50 + Math.floor(rand() * 300), kind: 'report', site: h.site, host: h.id, report });
      if (h.spool.length > 0) {
        // The backlog follows the first live report after the return (live overtakes spool), in the
        // agent's spool order: this boot's reports first, then older boots' (a restart in the cut).
        const backlog = [
          ...h.spool.filter((rep) => rep.boot_id === bootId),
          ...h.spool.filter((rep) => rep.boot_id !== bootId),
        ];
        backlog.forEach((rep, i) => {
          deliveries.push({ atMs: t + 1000 + i, kind: 'report', site: h.site, host: h.id, report: rep });
        });
        h.spool = [];
      }
    }
  }

  const incidents: InjectedIncident[] = events
    .filter((x) => x.e.kind !== 'new_rig')
    .map((x) => ({
      index: x.index,
      kind: x.e.kind,
      cause: causeOf(x.e),
      startMs: x.startMs,
      endMs: x.endMs,
      rigs: hosts.flatMap((h) => h.rigs.filter((r) => affects(x.e, r)).map((r) => r.key)),
      // A restart hidden in a cut has no silence of its own to detect: it must raise nothing.
      silent:
        x.e.kind === 'site_power' ||
        ((x.e.kind === 'agent_crash' || x.e.kind === 'host_reboot') &&
          !hosts.some((h) => hidingCut(h, x) !== undefined)) ||
        (x.e.kind === 'uplink_cut' && spec.collector === 'remote'),
    }));
  deliveries.sort((a, b) => a.atMs - b.atMs);
  return { spec, t0: T0, intervalMs, deliveries, truth, incidents };
}

/** Healthy share of a degrade_slow event at t: linear from 1 to `to` over the event. */
function rampOf(x: { e: EventSpec; startMs: number; endMs: number }, t: number): number {
  const to = x.e.to ?? 0.6;
  const p = Math.min(1, Math.max(0, (t - x.startMs) / Math.max(1, x.endMs - x.startMs)));
  return 1 - (1 - to) * p;
}
