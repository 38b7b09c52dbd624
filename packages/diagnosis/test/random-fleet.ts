/**
 * A seeded stream of everything a collector feeds the Diagnoser, over a small fleet where a lot goes
 * wrong at once: feeds and racks vanishing, site-wide pool trouble, uplink cuts, silent hosts that
 * come back live, from their spool or with a new boot (whose spool, kept across the restart, replays
 * the old boot's reports after the first live report), re-births that move rigs between feeds and
 * racks or drop and add rigs, rigs missing from reports, duplicate deliveries and duplicate samples.
 * The stream does not depend on what the Diagnoser answers, so any two Diagnosers can replay it.
 */
import type { Birth, Report, RigSample } from '@hashwatch/protocol';
import type { Presence } from '../src/diagnoser.js';
import { prng } from '../src/scenario/generate.js';
import { NOMINAL, type ProbeSet, probes, sample, T0 } from './helpers.js';

export const INTERVAL = 10_000;

export type FleetEvent =
  | { kind: 'birth'; site: string; host: string; birth: Birth; nowMs: number }
  | { kind: 'report'; site: string; host: string; report: Report; nowMs: number }
  | { kind: 'presence'; site: string; host: string; presence: Presence; nowMs: number }
  | { kind: 'tick'; nowMs: number }
  /** A collector restart: carry the state over through exportState()/importState(). */
  | { kind: 'restart' };

type Mode = 'ok' | 'slow' | 'dead' | 'pool' | 'gone' | 'off' | 'missing' | 'noise';

interface Rig {
  id: string;
  feed: string | null;
  rack: string | null;
  mode: Mode;
  until: number;
  upSinceRound: number;
}

interface Host {
  site: string;
  id: string;
  rigs: Rig[];
  boot: number;
  conn: number;
  seq: number;
  /** Rounds the host stays silent until, and how it comes back. */
  quietUntil: number;
  comeback: 'live' | 'spool' | 'reboot';
  missed: Report[];
  uplinkDownUntil: number;
  skewMs: number;
  born: boolean;
  startRound: number;
  nextRig: number;
  last: Report | null;
}

export interface FleetShape {
  sites: number;
  hostsPerSite: [number, number];
  rigsPerHost: [number, number];
  rounds: number;
  /** Insert a collector restart this often (in rounds); 0 for none. */
  restartEvery: number;
}

export function randomFleet(seed: number, shape: FleetShape): FleetEvent[] {
  const rand = prng(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
  const chance = (p: number) => rand() < p;
  const feeds = ['f0', 'f1', 'f2', 'f3'];
  const racks = ['k0', 'k1', 'k2', 'k3', 'k4'];
  const groupOf = (xs: readonly string[]) => (chance(0.1) ? null : pick(xs));
  const events: FleetEvent[] = [];
  const hosts: Host[] = [];
  for (let s = 0; s < shape.sites; s++) {
    const n = int(...shape.hostsPerSite);
    for (let h = 0; h < n; h++) {
      const rigs = Array.from({ length: int(...shape.rigsPerHost) }, (_, i) => ({
        id: `r${i}`,
        feed: groupOf(feeds),
        rack: groupOf(racks),
        mode: 'ok' as Mode,
        until: 0,
        upSinceRound: -1000,
      }));
      hosts.push({
        site: `s${s}`,
        id: `h${h}`,
        rigs,
        boot: 0,
        conn: 1,
        seq: 0,
        quietUntil: -1,
        comeback: 'live',
        missed: [],
        uplinkDownUntil: -1,
        skewMs: chance(0.15) ? int(-120, 120) * 1000 : 0,
        born: false,
        // A few hosts join late, and some of those spool before their first live report.
        startRound: chance(0.2) ? int(1, Math.floor(shape.rounds / 3)) : 0,
        nextRig: rigs.length,
        last: null,
      });
    }
  }
  // Site-wide and group events: rounds until which they last.
  const feedDown = new Map<string, number>();
  const rackDown = new Map<string, number>();
  const sitePoolDown = new Map<string, number>();

  const birthOf = (h: Host, k: number): Birth => ({
    v: 1,
    boot_id: `boot-${h.site}-${h.id}-${h.boot}`,
    conn: h.conn,
    ts: T0 + k * INTERVAL,
    agent_version: 'test',
    host: { hostname: h.id, os: 'linux', arch: 'x64', uptime_s: h.boot === 0 ? 86_400 : int(10, 200) },
    interval_ms: INTERVAL,
    rigs: h.rigs.map((r) => ({
      id: r.id,
      model: 'S19',
      api: 'cgminer' as const,
      nominal_hashrate_hs: NOMINAL,
      nominal_power_w: 3000,
      ...(r.feed !== null ? { feed: r.feed } : {}),
      ...(r.rack !== null ? { rack: r.rack } : {}),
    })),
    probes: [],
  });

  const sampleOf = (h: Host, r: Rig, k: number, ts: number): RigSample | null => {
    const deadPool = [{ url: 'p', status: 'dead' as const, active: true, last_share_ts: ts - 3_600_000 }];
    const uptime = { uptime_s: Math.max(1, (k - r.upSinceRound) * (INTERVAL / 1000)) };
    if ((r.feed !== null && (feedDown.get(`${h.site}/${r.feed}`) ?? -1) >= k) || r.mode === 'off') {
      return sample(r.id, ts, { reachable: false, error: { kind: 'timeout', message: 'no answer' }, ...uptime });
    }
    if ((r.rack !== null && (rackDown.get(`${h.site}/${r.rack}`) ?? -1) >= k) || r.mode === 'gone') {
      return sample(r.id, ts, { reachable: false, error: { kind: 'refused', message: 'refused' }, ...uptime });
    }
    if (h.uplinkDownUntil >= k || (sitePoolDown.get(h.site) ?? -1) >= k) {
      if (chance(0.85)) return sample(r.id, ts, { pools: deadPool, hashrate_hs: 0, ...uptime });
    }
    switch (r.mode) {
      case 'slow':
        return sample(r.id, ts, { hashrate_hs: 0.7 * NOMINAL, ...uptime });
      case 'dead':
        return sample(r.id, ts, {
          hashrate_hs: 0.1 * NOMINAL,
          boards: [
            { board: '0', ok: false },
            { board: '1', ok: false },
            { board: '2', ok: true },
          ],
          ...uptime,
        });
      case 'pool':
        return sample(r.id, ts, { pools: deadPool, hashrate_hs: 0, ...uptime });
      case 'missing':
        return null;
      case 'noise':
        return sample(r.id, ts, { hashrate_hs: (0.3 + rand()) * NOMINAL, ...uptime });
      default:
        return sample(r.id, ts, uptime);
    }
  };

  const reportOf = (h: Host, k: number, historical: boolean): Report => {
    const ts = T0 + k * INTERVAL + h.skewMs;
    const rigs: RigSample[] = [];
    for (const r of h.rigs) {
      const s = sampleOf(h, r, k, ts);
      if (s) rigs.push(s);
    }
    // The same rig twice in one report, saying different things.
    if (rigs.length > 0 && chance(0.03)) {
      const twin = pick(rigs);
      rigs.push({ ...twin, reachable: !twin.reachable });
    }
    // A rig the birth did not list.
    if (chance(0.01)) rigs.push(sample(`x${h.nextRig++}`, ts));
    const set: ProbeSet = h.uplinkDownUntil >= k ? { internet: false, pool: false, dns: chance(0.5) } : {};
    return {
      v: 1,
      boot_id: `boot-${h.site}-${h.id}-${h.boot}`,
      seq: h.seq++,
      ts,
      interval_ms: INTERVAL,
      ...(historical ? { historical: true } : {}),
      rigs,
      probes: probes(ts, set),
    };
  };

  for (let k = 0; k < shape.rounds; k++) {
    const nowMs = T0 + k * INTERVAL + 500;
    // Group events start.
    for (let s = 0; s < shape.sites; s++) {
      const site = `s${s}`;
      if (chance(0.02)) feedDown.set(`${site}/${pick(feeds)}`, k + int(1, 8));
      if (chance(0.02)) rackDown.set(`${site}/${pick(racks)}`, k + int(1, 8));
      if (chance(0.015)) sitePoolDown.set(site, k + int(2, 10));
    }
    for (const h of hosts) {
      if (k < h.startRound) continue;
      if (!h.born) {
        h.born = true;
        events.push({ kind: 'birth', site: h.site, host: h.id, birth: birthOf(h, k), nowMs: nowMs - 400 });
        if (h.startRound > 0 && chance(0.5)) {
          // Its spool from before the collector heard of it.
          for (let j = int(2, 6); j >= 1; j--)
            events.push({
              kind: 'report',
              site: h.site,
              host: h.id,
              report: reportOf(h, k - j, true),
              nowMs: nowMs - 300,
            });
        }
      }
      for (const r of h.rigs) {
        if (r.until <= k) {
          r.mode = chance(0.85) ? 'ok' : pick(['slow', 'dead', 'pool', 'gone', 'off', 'missing', 'noise'] as const);
          r.until = k + int(1, 8);
          if (r.mode === 'off') r.upSinceRound = r.until;
        }
      }
      if (h.uplinkDownUntil < k && chance(0.01)) h.uplinkDownUntil = k + int(1, 6);

      if (h.quietUntil >= k) {
        h.missed.push(reportOf(h, k, true));
        continue;
      }
      if (h.quietUntil === k - 1 && h.missed.length > 0) {
        // Back from a silence.
        if (h.comeback === 'reboot') {
          h.boot += 1;
          h.conn = 1;
          for (const r of h.rigs) if (chance(0.5)) r.upSinceRound = k - 1;
          events.push({ kind: 'birth', site: h.site, host: h.id, birth: birthOf(h, k), nowMs: nowMs - 300 });
        } else if (h.comeback === 'spool') {
          h.conn += 1;
          events.push({ kind: 'birth', site: h.site, host: h.id, birth: birthOf(h, k), nowMs: nowMs - 300 });
        }
        const live = reportOf(h, k, false);
        events.push({ kind: 'report', site: h.site, host: h.id, report: live, nowMs });
        if (h.comeback === 'spool') {
          for (const m of h.missed)
            if (chance(0.9)) events.push({ kind: 'report', site: h.site, host: h.id, report: m, nowMs: nowMs + 100 });
        } else if (h.comeback === 'reboot') {
          // The spool survives the restart: the old boot's reports follow the first live report.
          // All of them: no draw from the PRNG, so the rest of the stream is what it was without them.
          for (const m of h.missed)
            events.push({ kind: 'report', site: h.site, host: h.id, report: m, nowMs: nowMs + 100 });
        }
        h.missed = [];
        continue;
      }
      if (k > h.startRound + 3 && chance(0.02)) {
        h.quietUntil = k + int(2, 10);
        h.comeback = pick(['live', 'spool', 'reboot'] as const);
        if (chance(0.4)) {
          events.push({
            kind: 'presence',
            site: h.site,
            host: h.id,
            presence: {
              status: 'offline',
              reason: pick(['lost', 'shutdown'] as const),
              boot_id: `boot-${h.site}-${h.id}-${h.boot}`,
              conn: h.conn,
            },
            nowMs,
          });
        }
        h.missed.push(reportOf(h, k, true));
        continue;
      }
      if (chance(0.02)) {
        // Re-birth: rigs move between feeds and racks, one leaves, one joins.
        h.conn += 1;
        for (const r of h.rigs) {
          if (chance(0.3)) r.feed = groupOf(feeds);
          if (chance(0.3)) r.rack = groupOf(racks);
        }
        if (h.rigs.length > 2 && chance(0.5)) h.rigs.splice(int(0, h.rigs.length - 1), 1);
        if (chance(0.5))
          h.rigs.push({
            id: `r${h.nextRig++}`,
            feed: groupOf(feeds),
            rack: groupOf(racks),
            mode: 'ok',
            until: 0,
            upSinceRound: k,
          });
        events.push({ kind: 'birth', site: h.site, host: h.id, birth: birthOf(h, k), nowMs: nowMs - 200 });
      }
      const report = reportOf(h, k, false);
      events.push({ kind: 'report', site: h.site, host: h.id, report, nowMs });
      if (h.last && chance(0.02)) events.push({ kind: 'report', site: h.site, host: h.id, report: h.last, nowMs });
      h.last = report;
    }
    events.push({ kind: 'tick', nowMs: nowMs + 2000 });
    if (shape.restartEvery > 0 && k % shape.restartEvery === shape.restartEvery - 1) events.push({ kind: 'restart' });
  }
  return events;
}
