import fs from 'node:fs';
import { ConfigError } from '@hashwatch/protocol';
import { describe, expect, it } from 'vitest';
import { parseConfig } from './config.js';

describe('collector config', () => {
  it('fills every default from an empty file', () => {
    const c = parseConfig('', 'empty.yaml');
    expect(c.ingest).toMatchObject({ batch_max_ms: 10, skew_threshold_ms: 120_000 });
    expect(c.retention).toMatchObject({ raw_days: 7, minute_days: 90, drop_after_days: 400 });
    expect(c.http.host).toBe('127.0.0.1');
    expect(c.broker.mode).toBe('embedded');
  });

  it('names each bad key', () => {
    let err: unknown;
    try {
      parseConfig('ingest:\n  batch_max_ms: 0\nhttp:\n  port: 70000\nsurprise: 1\n', 'c.yaml');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems.join('\n');
    expect(problems).toMatch(/ingest\.batch_max_ms must be >= 1/);
    expect(problems).toMatch(/http\.port must be <= 65535/);
    expect(problems).toMatch(/surprise is not a known key/);
  });

  it('rejects retention tiers out of order and invalid YAML', () => {
    expect(() => parseConfig('retention: { raw_days: 30, minute_days: 10 }', 'c.yaml')).toThrow(
      /raw_days < minute_days/,
    );
    expect(() => parseConfig('ingest: [', 'c.yaml')).toThrow(/not valid YAML/);
  });

  it('applies HASHWATCH_COLLECTOR_ environment overrides over the file', () => {
    const c = parseConfig('ingest:\n  batch_max_ms: 20\n', 'c.yaml', {
      HASHWATCH_COLLECTOR_INGEST__BATCH_MAX_MS: '75',
      HASHWATCH_COLLECTOR_HTTP__API_TOKEN: 'abc',
    });
    expect(c.ingest.batch_max_ms).toBe(75);
    expect(c.http.api_token).toBe('abc');
  });

  it('documents every key with its default in the README and the example file', () => {
    const defaults = parseConfig('', 'defaults');
    const example = parseConfig(fs.readFileSync(new URL('../examples/collector.yaml', import.meta.url), 'utf8'), 'ex');
    const readme = fs.readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    // broker and diagnosis keys are documented beside their code (broker/README.md, packages/diagnosis)
    const { broker: _b, diagnosis: _d, ...mine } = defaults;
    const { broker: _e, diagnosis: _f, ...exampleMine } = example;
    expect(exampleMine).toEqual(mine);
    const walk = (obj: object, prefix: string): string[] =>
      Object.entries(obj).flatMap(([k, v]) =>
        typeof v === 'object' && v !== null ? walk(v, `${prefix}${k}.`) : [`${prefix}${k}`],
      );
    for (const key of walk(mine, '')) {
      const value = key.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], mine);
      const shown = value === '' ? '""' : String(value);
      const literal = (t: string) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      // table cells may be padded by the formatter
      expect(readme, key).toMatch(new RegExp(`\\|\\s*\`${literal(key)}\`\\s*\\|\\s*\`${literal(shown)}\`\\s*\\|`));
    }
  });
});
