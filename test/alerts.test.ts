/**
 * The alerting rules: valid (`promtool check rules`), unit-tested (`promtool test rules` on
 * docker/prometheus/alerts.test.yml), complete (every alert tested firing and not firing, with a
 * severity, a `for:` and operator-facing annotations), reading only metrics the collector exports,
 * and the tests are shown able to fail by running them against naive rules.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { createRuntimeRegistry, renderMetrics } from '../collector/src/metrics/index.js';
import { buildSyntheticFleet, syntheticSources } from '../collector/src/metrics/synthetic-fleet.js';
import { exposedSampleNames, promqlMetricNames, runPromtool } from './helpers/promtool.js';

const DIR = fileURLToPath(new URL('../docker/prometheus/', import.meta.url));
const RULES = join(DIR, 'alerts.yml');
const TESTS = join(DIR, 'alerts.test.yml');

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface RuleTest {
  alert_rule_test: { alertname: string; exp_alerts: unknown[] }[];
}

const rules: Rule[] = (parse(readFileSync(RULES, 'utf8')) as { groups: { rules: Rule[] }[] }).groups.flatMap(
  (g) => g.rules,
);
const unitTests = (parse(readFileSync(TESTS, 'utf8')) as { tests: RuleTest[] }).tests;

const scratch: string[] = [];
afterAll(() => {
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

/** Runs the unit tests against a modified copy of the rules. */
function testRulesWith(mutate: (rulesYaml: string) => string) {
  const dir = mkdtempSync(join(tmpdir(), 'hashwatch-alerts-'));
  scratch.push(dir);
  cpSync(TESTS, join(dir, 'alerts.test.yml'));
  const original = readFileSync(RULES, 'utf8');
  const mutated = mutate(original);
  expect(mutated).not.toBe(original);
  writeFileSync(join(dir, 'alerts.yml'), mutated);
  return runPromtool(['test', 'rules', 'alerts.test.yml'], { cwd: dir });
}

describe('alerting rules', () => {
  it('pass promtool check rules', () => {
    const res = runPromtool(['check', 'rules', RULES]);
    expect(res.stdout + res.stderr).toContain(`SUCCESS: ${rules.length} rules found`);
    expect(res.status).toBe(0);
  });

  it('pass their promtool unit tests', () => {
    const res = runPromtool(['test', 'rules', 'alerts.test.yml'], { cwd: DIR });
    expect(res.stdout + res.stderr).toContain('SUCCESS');
    expect(res.status, res.stdout + res.stderr).toBe(0);
  });

  it('every alert has for, severity and an actionable summary and description', () => {
    expect(rules.length).toBeGreaterThanOrEqual(15);
    for (const r of rules) {
      expect(r.for, r.alert).toMatch(/^\d+[smh]$/);
      expect(['critical', 'warning', 'info'], r.alert).toContain(r.labels?.['severity']);
      expect(r.annotations?.['summary']?.length ?? 0, r.alert).toBeGreaterThan(10);
      // "First check …" is the promise: the description names the first thing to look at.
      expect(r.annotations?.['description'], r.alert).toMatch(/First (check|look|open|read|restore|list)/);
    }
  });

  it('every alert is unit-tested both firing and not firing', () => {
    const cases = unitTests.flatMap((t) => t.alert_rule_test);
    for (const r of rules) {
      const mine = cases.filter((c) => c.alertname === r.alert);
      expect(
        mine.some((c) => c.exp_alerts.length > 0),
        `${r.alert} has a firing case`,
      ).toBe(true);
      expect(
        mine.some((c) => c.exp_alerts.length === 0),
        `${r.alert} has a silent case`,
      ).toBe(true);
    }
  });

  it('read only metrics the collector exports (or Prometheus up)', async () => {
    const nowMs = Date.UTC(2026, 0, 15, 12);
    const fleet = buildSyntheticFleet({ nowMs, sites: 2, hostsPerSite: 2, rigsPerHost: 4 });
    const text = await renderMetrics(
      { ...syntheticSources(fleet, nowMs), runtime: createRuntimeRegistry() },
      { perRig: true, nowMs },
    );
    const exported = exposedSampleNames(text);
    const used = rules.flatMap((r) => promqlMetricNames(r.expr));
    expect(used.length).toBeGreaterThan(10);
    for (const name of used) expect(exported.has(name), `${name} is exported`).toBe(true);
  });

  it('the unit tests catch a naive hashrate-drop hardware rule paging an uplink loss', () => {
    const res = testRulesWith((y) =>
      y.replace(
        'expr: hashwatch_rig_state{state="hardware_fault"} == 1',
        'expr: hashwatch_rig_hashrate_hashes_per_second < 0.5 * hashwatch_rig_expected_hashrate_hashes_per_second',
      ),
    );
    expect(res.status).not.toBe(0);
    expect(res.stdout + res.stderr).toContain('alertname: HashwatchRigHardwareFault');
  });

  it('the unit tests catch a site uplink rule that pages on any sick rig', () => {
    const res = testRulesWith((y) =>
      y.replace(
        /expr: \|\n\s+max by \(site\) \(hashwatch_site_state\{state="connectivity_loss"\}\) == 1\n[\s\S]*?>= 0\.5\n\s+\)\n/,
        'expr: sum by (site) (hashwatch_site_rigs{state!="ok"}) > 0\n',
      ),
    );
    expect(res.status).not.toBe(0);
    expect(res.stdout + res.stderr).toContain('alertname: HashwatchSiteUplinkDown');
  });
});
