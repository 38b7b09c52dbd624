/**
 * The provisioned Grafana dashboard: valid JSON, every panel wired to the provisioned Prometheus
 * data source with queries, the drill-down variables present, every PromQL expression valid
 * (checked by promtool as recording rules) and reading only metrics the collector exports.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { createRuntimeRegistry, renderMetrics } from '../collector/src/metrics/index.js';
import { buildSyntheticFleet, syntheticSources } from '../collector/src/metrics/synthetic-fleet.js';
import { exposedSampleNames, promqlMetricNames, runPromtool } from './helpers/promtool.js';

const GRAFANA = fileURLToPath(new URL('../docker/grafana/', import.meta.url));

interface Target {
  expr?: string;
  refId?: string;
  datasource?: { type?: string; uid?: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type?: string; uid?: string };
  targets?: Target[];
  panels?: Panel[];
  gridPos?: { x: number; y: number; w: number; h: number };
}
interface Variable {
  name: string;
  query: { query: string } | string;
  datasource?: { uid?: string };
}

const dashboard = JSON.parse(readFileSync(join(GRAFANA, 'dashboards/hashwatch.json'), 'utf8')) as {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: Variable[] };
};
const datasources = (
  parse(readFileSync(join(GRAFANA, 'provisioning/datasources/prometheus.yml'), 'utf8')) as {
    datasources: { uid: string; type: string; url: string }[];
  }
).datasources;

const allPanels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
const dataPanels = allPanels.filter((p) => p.type !== 'row');
const exprs = dataPanels.flatMap((p) => (p.targets ?? []).map((t) => t.expr ?? ''));
const varQuery = (v: Variable) => (typeof v.query === 'string' ? v.query : v.query.query);

const scratch: string[] = [];
afterAll(() => {
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

describe('Grafana provisioning and dashboard', () => {
  it('provisions one Prometheus data source the dashboard refers to by uid', () => {
    expect(datasources).toHaveLength(1);
    expect(datasources[0]?.type).toBe('prometheus');
    expect(datasources[0]?.url).toBe('http://prometheus:9090');
    const provider = parse(readFileSync(join(GRAFANA, 'provisioning/dashboards/hashwatch.yml'), 'utf8')) as {
      providers: { type: string; options: { path: string } }[];
    };
    expect(provider.providers[0]?.type).toBe('file');
    expect(provider.providers[0]?.options.path).toBe('/var/lib/grafana/dashboards');
  });

  it('has the overview, drill-downs, attribution and uplink sections with unique panel ids', () => {
    expect(dashboard.uid).toBe('hashwatch-fleet');
    const rows = allPanels.filter((p) => p.type === 'row').map((p) => p.title);
    for (const title of [
      'Fleet overview',
      'Site drill-down',
      'Incidents and attribution',
      'Uplink health',
      'Rig drill-down',
    ]) {
      expect(
        rows.some((r) => r.startsWith(title)),
        title,
      ).toBe(true);
    }
    const ids = allPanels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(dataPanels.length).toBeGreaterThan(20);
  });

  it('every panel has the provisioned data source and at least one query', () => {
    const uid = datasources[0]?.uid;
    for (const p of dataPanels) {
      expect(p.datasource?.uid, p.title).toBe(uid);
      expect(p.targets?.length ?? 0, p.title).toBeGreaterThan(0);
      for (const t of p.targets ?? []) {
        expect(t.datasource?.uid, p.title).toBe(uid);
        expect(t.expr?.trim().length ?? 0, p.title).toBeGreaterThan(0);
      }
      const g = p.gridPos;
      expect(g && g.x >= 0 && g.w > 0 && g.x + g.w <= 24, `${p.title} fits the 24-column grid`).toBe(true);
    }
  });

  it('drills down by site, host and rig through chained variables', () => {
    const vars = new Map(dashboard.templating.list.map((v) => [v.name, v]));
    expect([...vars.keys()]).toEqual(['site', 'host', 'rig']);
    expect(varQuery(vars.get('host')!)).toContain('site=~"$site"');
    expect(varQuery(vars.get('rig')!)).toContain('host=~"$host"');
    expect(exprs.some((e) => e.includes('rig=~"$rig"'))).toBe(true);
    for (const v of vars.values()) expect(v.datasource?.uid).toBe(datasources[0]?.uid);
  });

  it('every PromQL expression parses (promtool check rules on them as recording rules)', () => {
    const concrete = (e: string) =>
      e
        .replaceAll('$__rate_interval', '1m')
        .replaceAll('$__range', '6h')
        .replace(/\$(site|host|rig)\b/g, '.*');
    const rules = exprs.map((e, i) => ({ record: `hashwatch:dashboard_check_${i}`, expr: concrete(e) }));
    const dir = mkdtempSync(join(tmpdir(), 'hashwatch-grafana-'));
    scratch.push(dir);
    writeFileSync(join(dir, 'rules.yml'), stringify({ groups: [{ name: 'dashboard', rules }] }));
    const res = runPromtool(['check', 'rules', join(dir, 'rules.yml')]);
    expect(res.status, res.stdout + res.stderr).toBe(0);
    expect(res.stdout).toContain(`SUCCESS: ${rules.length} rules found`);
  });

  it('reads only metrics the collector exports', async () => {
    const nowMs = Date.UTC(2026, 0, 15, 12);
    const fleet = buildSyntheticFleet({ nowMs, sites: 2, hostsPerSite: 2, rigsPerHost: 4 });
    const text = await renderMetrics(
      { ...syntheticSources(fleet, nowMs), runtime: createRuntimeRegistry() },
      { perRig: true, nowMs },
    );
    const exported = exposedSampleNames(text);
    const used = new Set([...exprs, ...dashboard.templating.list.map(varQuery)].flatMap(promqlMetricNames));
    expect(used.size).toBeGreaterThan(25);
    for (const name of used) expect(exported.has(name), `${name} is exported`).toBe(true);
  });
});
