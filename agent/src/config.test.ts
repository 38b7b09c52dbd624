import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '@hashwatch/protocol';
import { describe, expect, it } from 'vitest';
import { brokerUsername, clientIdOf, defaultHostName, loadConfig, parseConfig } from './config.js';

function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

const rig = (id: string) => ({ id, api: 'cgminer', host: '10.0.0.1', nominal_hashrate_hs: 1e14 });

describe('agent config', () => {
  it('fills every default from an empty file', () => {
    const c = parseConfig(null, 'agent.yaml');
    expect(c.site).toBe('default');
    expect(c.host).toMatch(/^[a-z0-9][a-z0-9_-]{0,62}$/);
    expect(c.interval_ms).toBe(10_000);
    expect(c.broker).toMatchObject({ url: 'mqtt://127.0.0.1:1883', protocol_version: 4, keepalive_s: 30 });
    expect(c.broker.tls.reject_unauthorized).toBe(true);
    expect(c.spool).toEqual({ max_bytes: 1024 * 1024 * 1024, max_age_s: 7 * 86_400, memory_max_reports: 360 });
    expect(c.replay).toEqual({ rate_per_s: 20, max_inflight: 50, ack_timeout_ms: 60_000 });
    expect(c.poll).toEqual({ concurrency: 32, rig_timeout_ms: 5000, probe_timeout_ms: 2000, probe_attempts: 3 });
    expect(c.log.level).toBe('info');
    expect(c.rigs).toEqual([]);
    expect(clientIdOf({ ...c, site: 'farm-a', host: 'h1' })).toBe('hashwatch-agent-farm-a-h1');
  });

  it("logs in with a token as the collector's add-agent user, unless a username is set", () => {
    const c = parseConfig({ site: 'farm-a', host: 'h1' }, 'agent.yaml');
    expect(brokerUsername(c)).toBeUndefined();
    const withToken = { ...c, broker: { ...c.broker, token: 'secret' } };
    expect(brokerUsername(withToken)).toBe('farm-a.h1');
    expect(brokerUsername({ ...withToken, broker: { ...withToken.broker, username: 'custom' } })).toBe('custom');
  });

  it('applies HASHWATCH_AGENT_ environment overrides over the file', () => {
    const c = parseConfig({ broker: { password: 'from-file' } }, 'agent.yaml', {
      HASHWATCH_AGENT_BROKER__PASSWORD: 's3cret',
      HASHWATCH_AGENT_INTERVAL_MS: '5000',
      HASHWATCH_AGENT_SITE: 'farm-b',
      OTHER_VAR: 'x',
    });
    expect(c.broker.password).toBe('s3cret');
    expect(c.interval_ms).toBe(5000);
    expect(c.site).toBe('farm-b');
  });

  it('names the key of every problem', () => {
    const found = problems(() =>
      parseConfig(
        {
          site: 'Farm A',
          interval_ms: 10,
          broker: { protocol_version: 3, colour: 'red' },
          rigs: [rig('r1'), { ...rig('r2'), port: 70000 }],
        },
        'agent.yaml',
      ),
    );
    expect(found).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^site /),
        'interval_ms must be >= 1000',
        'broker.colour is not a known key',
        'rigs[1].port must be <= 65535',
      ]),
    );
    expect(found.some((p) => p.startsWith('broker.protocol_version'))).toBe(true);
  });

  it('rejects duplicate rig ids and probe targets with their paths', () => {
    const found = problems(() =>
      parseConfig(
        {
          rigs: [rig('r1'), rig('r2'), rig('r1')],
          probes: [
            { target: 'gw', kind: 'gateway', role: 'gateway', address: 'auto' },
            { target: 'gw', kind: 'icmp', role: 'internet', address: '192.0.2.1' },
          ],
        },
        'agent.yaml',
      ),
    );
    expect(found).toEqual(['rigs[2].id "r1" repeats rigs[0].id', 'probes[1].target "gw" repeats probes[0].target']);
  });

  it('reports unreadable files and broken YAML as config errors naming the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hw-cfg-'));
    try {
      expect(() => loadConfig(join(dir, 'missing.yaml'), {})).toThrow(/missing\.yaml[\s\S]*cannot read/);
      writeFileSync(join(dir, 'bad.yaml'), 'site: [unclosed\n');
      expect(() => loadConfig(join(dir, 'bad.yaml'), {})).toThrow(/not valid YAML/);
      writeFileSync(join(dir, 'list.yaml'), '- a\n- b\n');
      expect(() => loadConfig(join(dir, 'list.yaml'), {})).toThrow(/YAML mapping/);
      writeFileSync(
        join(dir, 'ok.yaml'),
        'site: farm-a\nhost: host-1\nrigs:\n  - {id: r1, api: axeos, host: 10.0.0.9, nominal_hashrate_hs: 5e11}\n',
      );
      const c = loadConfig(join(dir, 'ok.yaml'), {});
      expect(c.rigs[0]).toMatchObject({ id: 'r1', api: 'axeos', model: 'unknown' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('accepts the shipped example config', () => {
    const c = loadConfig(new URL('../examples/agent.yaml', import.meta.url).pathname, {});
    expect(c.site).toBe('farm-a');
    expect(c.rigs.map((r) => r.id)).toEqual(['s19-r1-01', 'bitaxe-01']);
    expect(c.rigs[0]?.nominal_hashrate_hs).toBe(110e12);
    expect(c.probes).toHaveLength(4);
  });

  it('derives a valid host name from the machine name', () => {
    expect(defaultHostName('Farm_Host-2.example.org')).toBe('farm_host-2');
    expect(defaultHostName('...')).toBe('agent');
    expect(defaultHostName('-x')).toBe('x');
  });
});
