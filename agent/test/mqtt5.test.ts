/** The agent speaking MQTT 5 to a real Mosquitto broker (aedes speaks only 3.1.1). */
import { rmSync } from 'node:fs';
import { decode } from '@hashwatch/protocol';
import { connect } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { Agent } from '../src/agent.js';
import { silentLogger } from '../src/log.js';
import { Acker, waitFor } from './helpers/acker.js';
import { fakePoll, testConfig } from './helpers/agent.js';
import { Mosquitto } from './helpers/mosquitto.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

describe('agent over MQTT 5 (mosquitto)', () => {
  it('publishes birth and state, delivers reports and drains on acks', async () => {
    const broker = new Mosquitto();
    cleanups.push(() => broker.stop());
    await broker.start();
    const acker = new Acker(broker.url);
    await acker.start();
    cleanups.push(() => acker.stop());
    const config = testConfig(broker.url, { broker: { url: broker.url, protocol_version: 5 } });
    cleanups.push(() => rmSync(config.data_dir, { recursive: true, force: true }));
    const agent = new Agent({ config, log: silentLogger(), poll: fakePoll(2) });
    cleanups.push(() => agent.stop());
    agent.start({ schedule: false });
    await waitFor(() => agent.publisher.connected, 5000, 'connected');

    for (let i = 0; i < 3; i++) await agent.runRound();
    await waitFor(() => agent.spool.depth() === 0, 10_000, 'acked');
    expect(acker.keys(agent.bootId).size).toBe(3);

    // Retained birth and state are there for a late subscriber.
    const seen: Record<string, unknown> = {};
    const late = connect(broker.url, { protocolVersion: 5, reconnectPeriod: 0 });
    cleanups.push(() => late.endAsync(true));
    late.on('message', (topic, payload) => {
      const kind = topic.endsWith('/birth') ? 'birth' : 'state';
      const res = decode(kind, payload, Date.now());
      if (res.ok) seen[kind] = res.value;
    });
    await new Promise<void>((r) => late.once('connect', () => r()));
    await late.subscribeAsync(['hw/v1/farm-a/host-1/birth', 'hw/v1/farm-a/host-1/state'], { qos: 1 });
    await waitFor(() => seen['birth'] !== undefined && seen['state'] !== undefined, 5000, 'retained birth/state');
    expect(seen['birth']).toMatchObject({ boot_id: agent.bootId, conn: 1 });
    expect(seen['state']).toMatchObject({ boot_id: agent.bootId, status: 'online', conn: 1 });
  });
});
