/**
 * The collector's exposition, checked by Prometheus's own parser and linter (`promtool check
 * metrics`), compared with a golden file, and probed for per-rig switching and escaping.
 * Regenerate the golden file with `UPDATE_GOLDEN=1 npx vitest run --project e2e metrics`.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { FleetView } from '../collector/src/fleet/view.js';
import { ExpositionWriter } from '../collector/src/metrics/exposition.js';
import {
  createRuntimeRegistry,
  renderFleetMetrics,
  renderMetrics,
  SLICE_MS,
  writeMetrics,
} from '../collector/src/metrics/index.js';
import { buildSyntheticFleet, syntheticSources } from '../collector/src/metrics/synthetic-fleet.js';
import { runPromtool } from './helpers/promtool.js';

const NOW_MS = Date.UTC(2026, 0, 15, 12, 0, 0);
const GOLDEN = fileURLToPath(new URL('./fixtures/metrics.golden.prom', import.meta.url));

function bigFleet() {
  return buildSyntheticFleet({ nowMs: NOW_MS, sites: 4, hostsPerSite: 5, rigsPerHost: 20 });
}

/** promtool exits 0 and prints nothing: lint findings count as failures (no exceptions needed). */
function expectPromtoolClean(text: string): void {
  const res = runPromtool(['check', 'metrics'], { stdin: text });
  expect({ status: res.status, out: `${res.stdout}${res.stderr}`.trim() }).toEqual({ status: 0, out: '' });
}

function seriesLines(text: string): string[] {
  return text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
}

describe('collector /metrics exposition', () => {
  it('passes promtool check metrics with per-rig series on', () => {
    const fleet = bigFleet();
    const text = renderFleetMetrics(syntheticSources(fleet, NOW_MS), { perRig: true, nowMs: NOW_MS });
    expect(text).toContain('hashwatch_rig_hashrate_hashes_per_second{site="alpha",host="host-1",rig="rig-01"}');
    expectPromtoolClean(text);
  });

  it('passes promtool with per-rig off, and then no series carries a rig label', () => {
    const fleet = bigFleet();
    const text = renderFleetMetrics(syntheticSources(fleet, NOW_MS), { perRig: false, nowMs: NOW_MS });
    expectPromtoolClean(text);
    expect(text).not.toMatch(/[{,]rig="/);
    expect(text).not.toContain('hashwatch_rig_');
    // Aggregates stay: 4 sites × 5 hosts.
    expect(seriesLines(text).filter((l) => l.startsWith('hashwatch_host_hashrate_hashes_per_second{'))).toHaveLength(
      20,
    );
    expect(seriesLines(text).filter((l) => l.startsWith('hashwatch_site_hashrate_hashes_per_second{'))).toHaveLength(4);
  });

  it('passes promtool with the process/runtime metrics appended', async () => {
    const sources = { ...syntheticSources(bigFleet(), NOW_MS), runtime: createRuntimeRegistry() };
    const text = await renderMetrics(sources, { perRig: true, nowMs: NOW_MS });
    expect(text).toContain('process_cpu_user_seconds_total');
    expect(text).toContain('nodejs_heap_size_used_bytes');
    expectPromtoolClean(text);
  });

  it('promtool really rejects a broken exposition (the check above can fail)', () => {
    const good = renderFleetMetrics(syntheticSources(bigFleet(), NOW_MS), { perRig: false, nowMs: NOW_MS });
    const unescaped = `${good}hashwatch_broken{model="a"b"} 1\n`;
    expect(runPromtool(['check', 'metrics'], { stdin: unescaped }).status).not.toBe(0);
    const lint = '# HELP hashwatch_bad_ms x\n# TYPE hashwatch_bad_ms counter\nhashwatch_bad_ms 1\n';
    expect(runPromtool(['check', 'metrics'], { stdin: lint }).status).not.toBe(0);
  });

  it('matches the golden file for a small fleet', () => {
    const fleet = buildSyntheticFleet({ nowMs: NOW_MS, sites: 2, hostsPerSite: 2, rigsPerHost: 4 });
    const text = renderFleetMetrics(syntheticSources(fleet, NOW_MS), { perRig: true, nowMs: NOW_MS });
    if (process.env['UPDATE_GOLDEN'] === '1') writeFileSync(GOLDEN, text);
    expect(text).toBe(readFileSync(GOLDEN, 'utf8'));
  });

  it('escapes quotes, backslashes and newlines in label values', () => {
    const text = renderFleetMetrics(syntheticSources(bigFleet(), NOW_MS), { perRig: true, nowMs: NOW_MS });
    expect(text).toContain('model="Antminer \\"S19\\" \\\\ Pro\\nrev2"');
    expect(text).toContain('version="0.1.0 \\"edge\\"\\\\build\\n2"');
    // No raw newline may split a series line: every non-comment line is `name{…} value` or `name value`.
    for (const line of seriesLines(text)) expect(line).toMatch(/^[a-z_:][a-z0-9_:]*(\{.*\})? \S+$/);
  });

  it('has HELP and TYPE for every family, no duplicate series, every state one-hot', () => {
    const text = renderFleetMetrics(syntheticSources(bigFleet(), NOW_MS), { perRig: true, nowMs: NOW_MS });
    const helped = new Set([...text.matchAll(/^# HELP (\S+) /gm)].map((m) => m[1]));
    const typed = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]));
    expect(helped).toEqual(typed);
    const lines = seriesLines(text);
    expect(new Set(lines.map((l) => l.slice(0, l.lastIndexOf(' ')))).size).toBe(lines.length);
    for (const line of lines) {
      const name = line.match(/^[a-z_:][a-z0-9_:]*/)?.[0] ?? '';
      const family = name.replace(/_(bucket|sum|count)$/, '');
      expect(typed.has(name) || typed.has(family), `${name} has a TYPE`).toBe(true);
    }
    const hot = lines.filter((l) => l.startsWith('hashwatch_rig_state{') && l.endsWith(' 1'));
    expect(hot).toHaveLength(400);
    // Every state appears in the synthetic fleet, each as exactly one 1 per rig.
    for (const s of ['ok', 'hardware_fault', 'connectivity_loss', 'pool_outage', 'power_loss', 'unknown']) {
      expect(hot.some((l) => l.includes(`state="${s}"`))).toBe(true);
    }
  });

  it('documents every family in collector/src/metrics/README.md', () => {
    const readme = readFileSync(fileURLToPath(new URL('../collector/src/metrics/README.md', import.meta.url)), 'utf8');
    const text = renderFleetMetrics(syntheticSources(bigFleet(), NOW_MS), { perRig: true, nowMs: NOW_MS });
    const families = [...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1] ?? '');
    expect(families.length).toBeGreaterThan(50);
    for (const name of families) expect(readme, name).toContain(`\`${name}\``);
  });

  it('renders the same page regardless of insertion order', () => {
    const a = buildSyntheticFleet({ nowMs: NOW_MS, sites: 2, hostsPerSite: 2, rigsPerHost: 4 });
    const b = new FleetView();
    for (const h of [...a.hosts.values()].reverse()) b.upsertHost(h.site, h.host, { ...h }, h.presenceSinceMs);
    for (const r of [...a.rigs.values()].reverse()) b.upsertRig(r.site, r.host, r.rig, { ...r }, r.stateSinceMs);
    for (const i of [...a.incidents.values()].reverse()) b.upsertIncident(i);
    for (const [site, state] of a.siteStates) b.setSiteState(site, state);
    Object.assign(b.deficitHashesByCause, a.deficitHashesByCause);
    const opts = { perRig: true, nowMs: NOW_MS };
    expect(renderFleetMetrics(syntheticSources(b, NOW_MS), opts)).toBe(
      renderFleetMetrics(syntheticSources(a, NOW_MS), opts),
    );
  });

  it('aggregates hosts and sites from reachable rigs and counts open incidents by cause', () => {
    const fleet = new FleetView();
    fleet.upsertHost('s1', 'h1', { online: true, state: 'ok' }, NOW_MS);
    fleet.upsertRig('s1', 'h1', 'r1', { state: 'ok', expectedHashrateHs: 100 }, NOW_MS);
    fleet.upsertRig('s1', 'h1', 'r2', { state: 'unreachable', expectedHashrateHs: 100 }, NOW_MS);
    fleet.recordSample('s1', 'h1', { rig: 'r1', ts: NOW_MS, reachable: true, hashrate_hs: 90, power_w: 10 }, NOW_MS);
    fleet.recordSample('s1', 'h1', { rig: 'r2', ts: NOW_MS, reachable: false, hashrate_hs: 50, power_w: 7 }, NOW_MS);
    const inc = { scope: 'rig' as const, site: 's1', rigsAffected: 1, deficitHashes: 0, energyJ: 0, evidence: [] };
    fleet.upsertIncident({ ...inc, id: 'a', scopeId: 's1/h1/r2', cause: 'unreachable', startMs: NOW_MS });
    fleet.upsertIncident({ ...inc, id: 'b', scopeId: 's1/h1/r2', cause: 'unreachable', startMs: 0, endMs: 1 });
    fleet.addDeficit('unreachable', 5000);
    const text = renderFleetMetrics({ fleet }, { perRig: false, nowMs: NOW_MS });
    const lines = seriesLines(text);
    expect(lines).toContain('hashwatch_host_hashrate_hashes_per_second{site="s1",host="h1"} 90');
    expect(lines).toContain('hashwatch_host_expected_hashrate_hashes_per_second{site="s1",host="h1"} 200');
    expect(lines).toContain('hashwatch_site_power_watts{site="s1"} 10');
    expect(lines).toContain('hashwatch_site_rigs{site="s1",state="unreachable"} 1');
    expect(lines).toContain('hashwatch_incidents_open{site="s1",cause="unreachable"} 1');
    expect(lines).toContain('hashwatch_incidents_open{site="s1",cause="hardware_fault"} 0');
    expect(lines).toContain('hashwatch_hashrate_deficit_hashes_total{cause="unreachable"} 5000');
    // No stats getters given: no collector-health families at all.
    expect(text).not.toContain('hashwatch_ingest_');
    expect(text).not.toContain('hashwatch_metrics_source_up');
  });

  it('keeps hosts of the same name in different sites apart, whatever the rig order', () => {
    // Key order puts s1/h1's rigs right before s2/h1's: a host is its site and its name.
    const fleet = new FleetView();
    for (const [site, hashrate] of [
      ['s1', 10],
      ['s2', 1000],
    ] as const) {
      fleet.upsertHost(site, 'h1', { online: true, state: 'ok' }, NOW_MS);
      for (const rig of ['r1', 'r2']) {
        fleet.upsertRig(site, 'h1', rig, { state: 'ok', expectedHashrateHs: hashrate }, NOW_MS);
        fleet.recordSample(site, 'h1', { rig, ts: NOW_MS, reachable: true, hashrate_hs: hashrate }, NOW_MS);
      }
    }
    for (const perRig of [true, false]) {
      const lines = seriesLines(renderFleetMetrics({ fleet }, { perRig, nowMs: NOW_MS }));
      expect(lines).toContain('hashwatch_host_hashrate_hashes_per_second{site="s1",host="h1"} 20');
      expect(lines).toContain('hashwatch_host_hashrate_hashes_per_second{site="s2",host="h1"} 2000');
      expect(lines).toContain('hashwatch_host_rigs{site="s2",host="h1",state="ok"} 2');
    }
  });

  it('reports a throwing stats source as down and still renders the rest', () => {
    const sources = {
      ...syntheticSources(bigFleet(), NOW_MS),
      store: () => {
        throw new Error('database is locked');
      },
    };
    const text = renderFleetMetrics(sources, { perRig: false, nowMs: NOW_MS });
    const lines = seriesLines(text);
    expect(lines).toContain('hashwatch_metrics_source_up{source="store"} 0');
    expect(lines).toContain('hashwatch_metrics_source_up{source="ingest"} 1');
    expect(text).not.toContain('hashwatch_store_up');
    expect(lines).toContain('hashwatch_ingest_reports_accepted_total 12345');
    expectPromtoolClean(text);
  });
});

describe('the sliced render (writeMetrics, what /metrics serves)', () => {
  // 20,000 rigs with per-rig series: ~150 ms of rendering here, so several slices.
  const largeFleet = () => buildSyntheticFleet({ nowMs: NOW_MS, sites: 5, hostsPerSite: 40, rigsPerHost: 100 });

  /** Renders with `writeMetrics` while counting the event loop's turns; `onTurn` runs at each. */
  async function slicedRender(fleet: FleetView, onTurn: (turn: number) => void = () => {}) {
    let turns = 0;
    let done = false;
    const spin = () => {
      if (done) return;
      onTurn(++turns);
      setImmediate(spin);
    };
    setImmediate(spin);
    const out = new ExpositionWriter();
    const t0 = performance.now();
    await writeMetrics(out, syntheticSources(fleet, NOW_MS), { perRig: true, nowMs: NOW_MS });
    const ms = performance.now() - t0;
    done = true;
    return { text: out.toString(), turns, ms };
  }

  it('gives the event loop turns while it renders, and the same bytes as one piece', async () => {
    const fleet = largeFleet();
    const whole = renderFleetMetrics(syntheticSources(fleet, NOW_MS), { perRig: true, nowMs: NOW_MS });
    const { text, turns, ms } = await slicedRender(fleet);
    expect(text).toBe(whole);
    // A render in one piece lets no turn through; slices of ~SLICE_MS let about one per slice.
    expect(ms).toBeGreaterThan(3 * SLICE_MS);
    expect(turns).toBeGreaterThanOrEqual(2);
  });

  it('stays a valid page when rigs change and arrive while it renders', async () => {
    const fleet = largeFleet();
    const [first] = fleet.rigs.values();
    if (!first) throw new Error('empty synthetic fleet');
    const { text, turns } = await slicedRender(fleet, (turn) => {
      // values move under the render, and a rig arrives: it waits for the next scrape
      first.state = turn % 2 === 0 ? 'hardware_fault' : 'ok';
      fleet.upsertRig(first.site, first.host, `late-${turn}`, { state: 'ok' }, NOW_MS);
    });
    expect(turns).toBeGreaterThanOrEqual(2);
    expect(text).not.toContain('rig="late-');
    const lines = seriesLines(text);
    expect(new Set(lines.map((l) => l.slice(0, l.lastIndexOf(' ')))).size).toBe(lines.length);
    expectPromtoolClean(text);
  });
});
