/**
 * Locates and runs `promtool` (Debian package `prometheus`). Tests that need it fail loudly when it
 * is missing, never skip: `npm run setup:test` installs it.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

const CANDIDATES = ['/usr/bin/promtool', '/usr/local/bin/promtool'];

/** Absolute path of promtool: `$PROMTOOL`, then `$PATH`, then the usual install places. */
export function findPromtool(): string {
  const fromEnv = process.env['PROMTOOL'];
  const dirs = (process.env['PATH'] ?? '').split(delimiter).filter(Boolean);
  const paths = [...(fromEnv ? [fromEnv] : []), ...dirs.map((d) => join(d, 'promtool')), ...CANDIDATES];
  for (const p of paths) {
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // try the next place
    }
  }
  throw new Error(
    'promtool not found (looked at $PROMTOOL, $PATH and /usr/bin): install the Debian package "prometheus" ' +
      '(npm run setup:test does it) or set PROMTOOL to its path',
  );
}

export interface PromtoolResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs promtool with `args`, feeding `stdin` when given; bounded by a timeout. */
export function runPromtool(args: string[], options: { stdin?: string; cwd?: string } = {}): PromtoolResult {
  const res = spawnSync(findPromtool(), args, {
    input: options.stdin,
    cwd: options.cwd,
    encoding: 'utf8',
    timeout: 60_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (res.error) throw res.error;
  return { status: res.status, stdout: res.stdout, stderr: res.stderr };
}

/**
 * Metric names a PromQL expression reads (ours and the process/runtime ones). Label values and
 * template text are ignored because only these prefixes count; `up` is Prometheus's own.
 */
export function promqlMetricNames(expr: string): string[] {
  const withoutStrings = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  const names = withoutStrings.match(/\b(?:hashwatch|process|nodejs)_[a-z0-9_]+\b/g) ?? [];
  return [...new Set(names)];
}

/** Names of the samples in an exposition (`_bucket`/`_sum`/`_count` only where a histogram has them). */
export function exposedSampleNames(exposition: string): Set<string> {
  const names = new Set<string>();
  for (const line of exposition.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
    if (m) names.add(m[0]);
  }
  return names;
}
