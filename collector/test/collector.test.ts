/** The Collector wiring with a real aedes broker: start, ingest, graceful stop (flush, ack, close). */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { agentTopic, exampleBirth, exampleReport } from '@hashwatch/protocol';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config.js';
import { Collector } from '../src/main.js';
import { AedesTestTransport, waitFor } from './helpers/aedes-transport.js';

describe('Collector', () => {
  it('flushes and acks the pending batch on stop, then closes the database', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hw-collector-'));
    const dbPath = path.join(dir, 'hw.db');
    // a batch window far longer than the test: only stop() can commit it
    const config = parseConfig(
      `store: { path: ${JSON.stringify(dbPath)} }\ningest: { batch_max_ms: 600000 }\nhttp: { port: 0 }\n`,
      'test',
    );
    const transport = new AedesTestTransport();
    const collector = new Collector(config, pino({ level: 'silent' }), { transport });
    await collector.start();
    const res = await fetch(`http://127.0.0.1:${collector.http.port}/readyz`);
    expect(res.status).toBe(200);

    const { client, messages } = await transport.agent('farm-a', 'host-1');
    await client.publishAsync(agentTopic('farm-a', 'host-1', 'birth'), JSON.stringify(exampleBirth(Date.now())), {
      qos: 1,
    });
    await client.publishAsync(
      agentTopic('farm-a', 'host-1', 'report'),
      JSON.stringify(exampleReport(Date.now(), 2, 0)),
      {
        qos: 1,
      },
    );
    await waitFor(() => collector.ingest.stats().pendingReports === 1, 'the report to be batched');
    expect(messages.filter((m) => m.topic.endsWith('/ack'))).toHaveLength(0);

    await collector.stop();
    await waitFor(() => messages.some((m) => m.topic.endsWith('/ack')), 'the ack sent during stop');
    await client.endAsync(true);
    expect(collector.store.isOpen).toBe(false);
    const db = new Database(dbPath, { readonly: true });
    expect(db.prepare('SELECT COUNT(*) AS n FROM samples').get()).toEqual({ n: 2 });
    db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
