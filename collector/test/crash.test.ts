/**
 * The collector's delivery promise, black-box: a real collector process (`node dist/cli.js`) with
 * its embedded broker, a real agent-shaped mqtt.js client publishing QoS 1 reports, `kill -9`
 * while batches are in flight, restart: every report that was acked is in the store, once.
 * Needs `npx tsc -b` first.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { agentTopic, EXAMPLE_BOOT_ID, exampleBirth, exampleReport } from '@hashwatch/protocol';
import Database from 'better-sqlite3';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from './helpers/aedes-transport.js';

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const SITE = 'farm-a';
const HOST = 'host-1';

interface Running {
  child: ChildProcess;
  mqttPort: number;
  httpPort: number;
  exited: Promise<number | null>;
}

const children: ChildProcess[] = [];

/** Starts the collector and reads its ports from its JSON log lines. */
async function startCollector(configFile: string): Promise<Running> {
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npx tsc -b\` before this test`);
  const child = spawn(process.execPath, [CLI, 'run', '--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let mqttPort = 0;
  let httpPort = 0;
  let stderr = '';
  let buffered = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  child.stdout?.on('data', (d: Buffer) => {
    buffered += d.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines) {
      try {
        const entry = JSON.parse(line) as { msg?: string; port?: number; ports?: { mqtt?: number } };
        if (entry.msg === 'HTTP server listening' && entry.port) httpPort = entry.port;
        if (entry.ports?.mqtt) mqttPort = entry.ports.mqtt;
      } catch {
        // not a log line
      }
    }
  });
  let exitCode: number | null | undefined;
  void exited.then((c) => {
    exitCode = c;
  });
  await waitFor(() => (mqttPort > 0 && httpPort > 0) || exitCode !== undefined, 'the collector to start', 20_000);
  if (exitCode !== undefined) throw new Error(`collector exited with ${exitCode}: ${stderr}`);
  return { child, mqttPort, httpPort, exited };
}

afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

describe('collector process', () => {
  it('keeps every acked report across kill -9 mid-batch', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hw-crash-'));
    const dbPath = path.join(dir, 'hw.db');
    const configFile = path.join(dir, 'collector.yaml');
    fs.writeFileSync(
      configFile,
      [
        `data_dir: ${JSON.stringify(dir)}`,
        'log: { level: info }',
        `store: { path: ${JSON.stringify(dbPath)} }`,
        // a wide batch window so the kill lands while reports wait for their commit
        'ingest: { batch_max_ms: 150 }',
        'http: { host: 127.0.0.1, port: 0 }',
        'broker: { embedded: { host: 127.0.0.1, port: 0, allow_anonymous: true } }',
      ].join('\n'),
    );

    const first = await startCollector(configFile);
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${first.mqttPort}`, {
      reconnectPeriod: 0,
      connectTimeout: 5000,
    });
    const acked = new Set<number>();
    client.on('message', (topic, payload) => {
      if (!topic.endsWith('/ack')) return;
      const ack = JSON.parse(payload.toString()) as { acks: Array<{ boot_id: string; ranges: [number, number][] }> };
      for (const a of ack.acks) {
        expect(a.boot_id).toBe(EXAMPLE_BOOT_ID);
        for (const [from, to] of a.ranges) for (let s = from; s <= to; s++) acked.add(s);
      }
    });
    client.on('error', () => {
      // the broker dies with the process
    });
    await client.subscribeAsync(agentTopic(SITE, HOST, 'ack'), { qos: 1 });
    await client.publishAsync(agentTopic(SITE, HOST, 'birth'), JSON.stringify(exampleBirth(Date.now())), { qos: 1 });

    // Publish without waiting for acks; kill once some are acked and more are in flight.
    let sent = 0;
    const publishing = (async () => {
      for (let seq = 0; seq < 2000; seq++) {
        if (first.child.exitCode !== null || first.child.signalCode !== null) break;
        client.publish(agentTopic(SITE, HOST, 'report'), JSON.stringify(exampleReport(Date.now(), 20, seq)), {
          qos: 1,
        });
        sent = seq + 1;
        await new Promise((r) => setTimeout(r, 2));
      }
    })();
    await waitFor(() => acked.size >= 50, 'some acks before the kill', 20_000);
    first.child.kill('SIGKILL');
    expect(await first.exited).toBe(null);
    await publishing;
    client.end(true);
    const ackedBeforeKill = new Set(acked);
    expect(ackedBeforeKill.size).toBeGreaterThanOrEqual(50);
    // the kill happened with reports still unacked: otherwise this test proves nothing
    expect(sent).toBeGreaterThan(ackedBeforeKill.size);

    const second = await startCollector(configFile);
    const db = new Database(dbPath, { readonly: true });
    const stored = new Set((db.prepare('SELECT seq FROM reports').all() as Array<{ seq: number }>).map((r) => r.seq));
    const samplesPerReport = db.prepare('SELECT COUNT(*) AS n FROM samples GROUP BY report_id HAVING n != 20').all();
    db.close();
    for (const seq of ackedBeforeKill) expect(stored.has(seq), `acked seq ${seq} is stored`).toBe(true);
    expect(samplesPerReport).toEqual([]);

    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
    fs.rmSync(dir, { recursive: true, force: true });
  }, 90_000);
});
