/**
 * Loads every scenario file of a directory (sorted by name) and runs the suite. The only part of
 * the scenario engine that touches the file system (kept out of src/, which stays pure); the runner
 * CLI and the vitest suite share it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseScenario, type ScenarioSpec } from '../src/scenario/format.js';
import { generate } from '../src/scenario/generate.js';
import { runScenario, type ScenarioResult, type Summary, summarize } from '../src/scenario/score.js';

export function loadScenarios(dir: string): ScenarioSpec[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => parseScenario(readFileSync(join(dir, f), 'utf8'), f));
}

export function runSuite(dir: string, only?: string): { results: ScenarioResult[]; summary: Summary } {
  const specs = loadScenarios(dir).filter((s) => only === undefined || s.name.includes(only));
  const results = specs.map((s) => runScenario(generate(s)));
  return { results, summary: summarize(results) };
}
