/**
 * The installed program as a black box: `node agent/dist/cli.js run` against a real broker,
 * killed with SIGKILL mid-replay and restarted, and put through a reconnect storm.
 * Needs `npx tsc -b` first.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AgentState, decode } from '@hashwatch/protocol';
import Database from 'better-sqlite3';
import { connect } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { brokerWithAcker, waitFor } from './helpers/acker.js';
import { AgentProcess } from './helpers/child.js';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function writeConfig(dir: string, brokerUrl: string, replay: { rate_per_s: number; max_inflight: number }): string {
  const path = join(dir, 'agent.yaml');
  writeFileSync(
    path,
    [
      'site: farm-p',
      'host: host-p',
      'interval_ms: 1000',
      `data_dir: ${join(dir, 'data')}`,
      'broker:',
      `  url: ${brokerUrl}`,
      '  reconnect_min_ms: 50',
      '  reconnect_max_ms: 300',
      '  keepalive_s: 5',
      'replay:',
      `  rate_per_s: ${replay.rate_per_s}`,
      `  max_inflight: ${replay.max_inflight}`,
      '  ack_timeout_ms: 3000',
      'log:',
      '  level: info',
      '',
    ].join('\n'),
  );
  return path;
}

function spooledSeqs(dataDir: string, bootId: string): number[] {
  const db = new Database(join(dataDir, 'spool.sqlite'));
  try {
    return (db.prepare('SELECT seq FROM spool WHERE boot_id = ? ORDER BY seq').all(bootId) as { seq: number }[]).map(
      (r) => r.seq,
    );
  } finally {
    db.close();
  }
}

async function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'hw-agent-proc-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const { broker, acker } = await brokerWithAcker(cleanups);
  return { dir, broker, acker };
}

describe('hashwatch-agent process', () => {
  it('loses nothing when killed with SIGKILL mid-replay and restarted', { timeout: 90_000 }, async () => {
    const { dir, broker, acker } = await setup();
    const states: AgentState[] = [];
    const watcher = connect(broker.url, { reconnectPeriod: 100 });
    watcher.on('error', () => {});
    cleanups.push(() => watcher.endAsync(true));
    watcher.on('connect', () => watcher.subscribe('hw/v1/farm-p/host-p/state', { qos: 1 }));
    watcher.on('message', (_t, payload) => {
      const res = decode('state', payload, Date.now());
      if (res.ok) states.push(res.value);
    });

    const configPath = writeConfig(dir, broker.url, { rate_per_s: 2, max_inflight: 2 });
    const first = new AgentProcess(configPath);
    first.start();
    cleanups.push(() => first.kill('SIGKILL'));
    await waitFor(() => acker.received.length >= 2, 15_000, 'first live reports');
    const bootId1 = acker.received[0]?.report.boot_id ?? '';

    await broker.stop();
    await sleep(6000); // ~6 reports spooled while the broker is away
    await broker.start();
    await waitFor(
      () => acker.received.filter((r) => r.report.boot_id === bootId1 && r.report.historical).length >= 2,
      15_000,
      'replay under way',
    );
    expect(await first.kill('SIGKILL')).toBeNull();

    const produced = new Set([...acker.keys(bootId1)].map((k) => Number(k.split(':')[1])));
    for (const seq of spooledSeqs(join(dir, 'data'), bootId1)) produced.add(seq);
    const maxSeq = Math.max(...produced);
    expect(maxSeq).toBeGreaterThanOrEqual(6);
    // Every seq of the killed boot up to its last committed report exists somewhere: no holes.
    expect([...produced].sort((a, b) => a - b)).toEqual(Array.from({ length: maxSeq + 1 }, (_, i) => i));
    await waitFor(() => states.some((s) => s.boot_id === bootId1 && s.reason === 'lost'), 10_000, 'Last Will');

    const second = new AgentProcess(configPath);
    second.start();
    cleanups.push(() => second.kill('SIGKILL'));
    await waitFor(
      () => [...produced].every((seq) => acker.keys(bootId1).has(`${bootId1}:${seq}`)),
      30_000,
      'the killed boot’s reports to arrive',
    );
    await waitFor(() => spooledSeqs(join(dir, 'data'), bootId1).length === 0, 10_000, 'old boot acked');
    const bootId2 = acker.received.find((r) => r.report.boot_id !== bootId1)?.report.boot_id;
    expect(bootId2).toBeDefined();
    expect(bootId2).not.toBe(bootId1);

    // Duplicates on the wire carry the same (boot_id, seq) and the same content.
    const byKey = new Map<string, number>();
    for (const r of acker.received) {
      const key = `${r.report.boot_id}:${r.report.seq}`;
      const ts = byKey.get(key);
      if (ts !== undefined) expect(r.report.ts).toBe(ts);
      byKey.set(key, r.report.ts);
    }
    expect(acker.rejected).toEqual([]);

    expect(await second.kill('SIGTERM')).toBe(0);
    await waitFor(() => states.some((s) => s.boot_id === bootId2 && s.reason === 'shutdown'), 10_000, 'shutdown state');
  });

  it('survives a reconnect storm without leaking file descriptors', { timeout: 90_000 }, async () => {
    const { dir, broker, acker } = await setup();
    const configPath = writeConfig(dir, broker.url, { rate_per_s: 50, max_inflight: 10 });
    const agent = new AgentProcess(configPath);
    agent.start();
    cleanups.push(() => agent.kill('SIGKILL'));
    await waitFor(() => acker.received.length >= 1, 15_000, 'first report');
    await sleep(500);
    const fdsBefore = agent.fdCount();

    const started = Date.now();
    for (let i = 0; i < 20; i++) {
      const connects = agent.logs('Connected to the MQTT broker').length;
      await broker.restart(100);
      await waitFor(
        () => agent.logs('Connected to the MQTT broker').length > connects,
        10_000,
        `reconnect after restart ${i + 1}`,
      );
      await sleep(200 + Math.floor(Math.random() * 300));
    }
    expect(Date.now() - started).toBeLessThan(60_000);
    const before = acker.received.length;
    await waitFor(() => acker.received.length > before, 10_000, 'reports after the storm');
    await sleep(1000);
    const fdsAfter = agent.fdCount();
    // One socket to the broker plus SQLite's files: the storm must not add any.
    expect(fdsAfter).toBeLessThanOrEqual(fdsBefore + 1);
    expect(agent.logs('Connected to the MQTT broker').length).toBeGreaterThanOrEqual(21);
    expect(await agent.kill('SIGTERM')).toBe(0);
  });
});
