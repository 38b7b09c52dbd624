/**
 * The whole scenario suite through the real Diagnoser, held to the targets of the diagnosis issue.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runSuite } from '../scenarios/load.js';
import { parseScenario } from '../src/scenario/format.js';
import { generate } from '../src/scenario/generate.js';
import { runScenario, TARGETS } from '../src/scenario/score.js';

const dir = fileURLToPath(new URL('../scenarios/', import.meta.url));

describe('scenario suite', () => {
  const { results, summary } = runSuite(dir);

  it('has at least 25 scenarios covering every cause', () => {
    expect(results.length).toBeGreaterThanOrEqual(25);
    const causes = summary.causes.filter((c) => c.truthSlots > 0).map((c) => c.cause);
    expect(causes).toEqual(
      expect.arrayContaining([
        'ok',
        'degraded',
        'hardware_fault',
        'connectivity_loss',
        'pool_outage',
        'power_loss',
        'unreachable',
      ]),
    );
  });

  it('never confuses connectivity loss with hardware fault', () => {
    expect(results.filter((r) => r.connHwConfusions > 0).map((r) => r.name)).toEqual([]);
  });

  it('reaches precision and recall targets for every cause', () => {
    for (const c of summary.causes) {
      expect.soft(c.precision, `${c.cause} precision`).toBeGreaterThanOrEqual(TARGETS.precision);
      expect.soft(c.recall, `${c.cause} recall`).toBeGreaterThanOrEqual(TARGETS.recall);
    }
  });

  it('detects every injected fault in time and attributes within 5 %', () => {
    expect(results.filter((r) => !r.pass).map((r) => `${r.name}: ${r.failures.join('; ')}`)).toEqual([]);
    for (const r of results) expect(r.attributionError).toBeLessThanOrEqual(TARGETS.attributionError);
  });

  it('is deterministic: the same seed gives the same result', () => {
    const spec = parseScenario(readFileSync(`${dir}/uplink-flapping.yaml`, 'utf8'), 'uplink-flapping.yaml');
    expect(runScenario(generate(spec))).toEqual(runScenario(generate(spec)));
  });

  it('can fail: without hysteresis a noisy fleet flaps, with slow confirmation an uplink cut is seen late', () => {
    const noisy = parseScenario(readFileSync(`${dir}/noisy-fleet.yaml`, 'utf8'), 'noisy-fleet.yaml');
    const flappy = runScenario(generate(noisy), { confirm_reports: 1, confirm_reports_hardware: 1 });
    expect(flappy.confusion['ok']?.['hardware_fault'] ?? 0).toBeGreaterThan(0);
    const cut = parseScenario(readFileSync(`${dir}/uplink-cut-short.yaml`, 'utf8'), 'uplink-cut-short.yaml');
    const late = runScenario(generate(cut), { confirm_reports: 4 });
    expect(late.pass).toBe(false);
  });
});
