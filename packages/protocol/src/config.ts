/**
 * Config validation shared by the agent and the collector: a TypeBox schema with defaults,
 * compiled by ajv, and error messages that name the key's path (`rigs[2].port must be <= 65535`).
 * Lives here so both programs phrase config errors the same way.
 */
import type { Static, TSchema } from '@sinclair/typebox';
import { Ajv, type ErrorObject } from 'ajv';

const ajv = new Ajv({ allErrors: true, strict: false, useDefaults: true, coerceTypes: false });

/** `/rigs/2/port` → `rigs[2].port` */
export function configPath(pointer: string): string {
  let out = '';
  for (const part of pointer.split('/').slice(1)) {
    const key = part.replace(/~1/g, '/').replace(/~0/g, '~');
    out += /^\d+$/.test(key) ? `[${key}]` : out === '' ? key : `.${key}`;
  }
  return out;
}

function describe(err: ErrorObject): string {
  const at = configPath(err.instancePath);
  const prefix = at === '' ? '' : `${at} `;
  switch (err.keyword) {
    case 'required':
      return `${at === '' ? '' : `${at}.`}${(err.params as { missingProperty: string }).missingProperty} is required`;
    case 'additionalProperties':
      return `${at === '' ? '' : `${at}.`}${(err.params as { additionalProperty: string }).additionalProperty} is not a known key`;
    case 'enum':
      return `${prefix}must be one of ${(err.params as { allowedValues: unknown[] }).allowedValues.join(', ')}`;
    case 'maximum':
      return `${prefix}must be <= ${(err.params as { limit: number }).limit}`;
    case 'minimum':
      return `${prefix}must be >= ${(err.params as { limit: number }).limit}`;
    default:
      return `${prefix}${err.message ?? 'is invalid'}`;
  }
}

export class ConfigError extends Error {
  readonly problems: string[];
  constructor(source: string, problems: string[]) {
    super(`Invalid config in ${source}:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/**
 * Validates `value` against `schema`, filling defaults in place. Throws a ConfigError listing
 * every problem with its key path; `source` names the file (or "environment") for the message.
 */
export function checkConfig<T extends TSchema>(schema: T, value: unknown, source: string): Static<T> {
  const validate = ajv.compile(schema);
  const copy = structuredClone(value ?? {});
  if (!validate(copy)) {
    const problems = [...new Set((validate.errors ?? []).filter((e) => e.keyword !== 'if').map(describe))];
    throw new ConfigError(source, problems);
  }
  return copy as Static<T>;
}

/**
 * Applies `PREFIX_SECTION__KEY=value` environment overrides to a parsed config object: `__`
 * separates nesting levels, names are lower-cased, values are parsed as JSON when they parse
 * (numbers, booleans, arrays) and kept as strings otherwise. Returns the keys it set.
 */
export function applyEnvOverrides(
  config: Record<string, unknown>,
  env: Record<string, string | undefined>,
  prefix: string,
): string[] {
  const applied: string[] = [];
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith(prefix) || raw === undefined) continue;
    const path = name.slice(prefix.length).toLowerCase().split('__').filter(Boolean);
    if (path.length === 0) continue;
    let value: unknown = raw;
    try {
      value = JSON.parse(raw);
    } catch {
      // a plain string value
    }
    let node: Record<string, unknown> = config;
    for (const key of path.slice(0, -1)) {
      if (key === '__proto__' || key === 'constructor' || key === 'prototype') break;
      const next = node[key];
      if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
      node = node[key] as Record<string, unknown>;
    }
    const last = path[path.length - 1] as string;
    if (last === '__proto__' || last === 'constructor' || last === 'prototype') continue;
    node[last] = value;
    applied.push(path.join('.'));
  }
  return applied;
}
