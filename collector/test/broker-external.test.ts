/**
 * External mode against a real mosquitto (password file + ACL): delivery, PUBACK held until the
 * handler resolves (proved by redelivery after the collector goes away), surviving a broker
 * restart, and shared subscriptions splitting messages between two collectors.
 */
import { COLLECTOR_STATE_TOPIC, checkConfig } from '@hashwatch/protocol';
import type { MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BrokerConfig } from '../src/broker/config.js';
import { toMosquittoAcl } from '../src/broker/credentials.js';
import type { ExternalBroker } from '../src/broker/external.js';
import { createTransport } from '../src/broker/index.js';
import type { InboundMessage } from '../src/broker/transport.js';
import { captureLog, connectClient, sleep, waitFor } from './broker-helpers.js';
import { type Mosquitto, startMosquitto } from './helpers/mosquitto.js';

const COLLECTOR = { username: 'hashwatch-collector', password: 'collector-secret' };
const AGENT = { username: 'site1.host1', password: 'agent-secret' };

let mosquitto: Mosquitto;

beforeAll(async () => {
  mosquitto = await startMosquitto({
    users: [COLLECTOR, AGENT],
    acl: toMosquittoAcl([{ username: AGENT.username, site: 'site1', host: 'host1', secret_hash: 'unused' }]),
  });
});

afterAll(async () => {
  await mosquitto?.stop();
});

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

function collector(external: Record<string, unknown> = {}): { t: ExternalBroker; lines: Record<string, unknown>[] } {
  const capture = captureLog('info');
  const config = checkConfig(
    BrokerConfig,
    {
      mode: 'external',
      external: {
        url: mosquitto.url,
        username: COLLECTOR.username,
        password: COLLECTOR.password,
        reconnect_period_ms: 200,
        ...external,
      },
    },
    'test',
  );
  const t = createTransport(config, capture.log, { collectorId: 'ext-collector' }) as ExternalBroker;
  cleanups.push(() => t.stop());
  return { t, lines: capture.lines };
}

async function agent(): Promise<MqttClient> {
  const c = await connectClient(mosquitto.url, { ...AGENT, clientId: `agent-${Math.random().toString(36).slice(2)}` });
  cleanups.push(() => {
    c.end(true);
  });
  return c;
}

const REPORT = 'hw/v1/site1/host1/report';

describe('external broker (mosquitto)', () => {
  it('delivers agent messages to the handler and publishes retained presence online/offline', async () => {
    const { t } = collector({ client_id: 'c-deliver' });
    const got: InboundMessage[] = [];
    t.onMessage((m) => {
      got.push(m);
    });
    await t.start();
    expect(t.health()).toMatchObject({ up: true, mode: 'external' });
    const a = await agent();
    await a.publishAsync(REPORT, '{"n":1}', { qos: 1 });
    await a.publishAsync('hw/v1/site1/host1/birth', '{"n":2}', { qos: 1, retain: true });
    await waitFor(() => got.length === 2, 'two messages');
    expect(got.map((m) => [m.topic, m.payload.toString()])).toEqual([
      [REPORT, '{"n":1}'],
      ['hw/v1/site1/host1/birth', '{"n":2}'],
    ]);
    const states: string[] = [];
    a.on('message', (topic, p) => {
      if (topic === COLLECTOR_STATE_TOPIC) states.push(JSON.parse(p.toString()).status);
    });
    await a.subscribeAsync(COLLECTOR_STATE_TOPIC, { qos: 1 });
    await waitFor(() => states.length === 1, 'retained online');
    await t.stop();
    await waitFor(() => states.length === 2, 'offline after stop');
    expect(states).toEqual(['online', 'offline']);
    expect(t.health().up).toBe(false);
    // Clean up the persistent session's retained birth for the other tests.
    await a.publishAsync('hw/v1/site1/host1/birth', '', { qos: 1, retain: true });
  });

  it('withholds the PUBACK until the handler resolves: unfinished messages are redelivered', async () => {
    const clientId = 'c-puback';
    const first = collector({ client_id: clientId });
    const seenFirst: string[] = [];
    let releaseFirst: () => void = () => {};
    const blocked = new Promise<void>((r) => {
      releaseFirst = r;
    });
    first.t.onMessage(async (m) => {
      const body = m.payload.toString();
      seenFirst.push(body);
      if (body === 'm1') await blocked; // "commit" never finishes before the crash
    });
    await first.t.start();
    const a = await agent();
    await a.publishAsync(REPORT, 'm1', { qos: 1 });
    await a.publishAsync(REPORT, 'm2', { qos: 1 });
    // m2 reaches the handler while m1 is still pending (the window does not serialise ingest) ...
    await waitFor(() => seenFirst.length === 2, 'm1 and m2 at the first collector');
    expect(first.t.stats().unacked).toBe(2); // ... but its PUBACK waits behind m1's, in order
    await first.t.stop();
    releaseFirst();

    const second = collector({ client_id: clientId });
    const seenSecond: string[] = [];
    second.t.onMessage((m) => {
      seenSecond.push(m.payload.toString());
    });
    await second.t.start();
    await waitFor(() => seenSecond.length >= 2, 'redelivery of m1 and m2');
    expect(seenSecond.slice(0, 2)).toEqual(['m1', 'm2']);
    await waitFor(() => second.t.stats().unacked === 0, 'acks sent');
    await second.t.stop();

    // Both were acked by the second collector: a third one with the same session gets only new messages.
    const third = collector({ client_id: clientId });
    const seenThird: string[] = [];
    third.t.onMessage((m) => {
      seenThird.push(m.payload.toString());
    });
    await third.t.start();
    await a.publishAsync(REPORT, 'm3', { qos: 1 });
    await waitFor(() => seenThird.includes('m3'), 'm3');
    await sleep(200);
    expect(seenThird).toEqual(['m3']);
  });

  it('survives a mosquitto restart: reconnects and subscribes again', async () => {
    const { t, lines } = collector({ client_id: 'c-restart' });
    const got: string[] = [];
    t.onMessage((m) => {
      got.push(m.payload.toString());
    });
    await t.start();
    await mosquitto.restart(); // no persistence: the broker forgets the session and its subscriptions
    await waitFor(() => !t.health().up, 'disconnect noticed', 10_000).catch(() => {});
    await waitFor(() => t.health().up, 'reconnected', 15_000);
    await waitFor(() => lines.filter((l) => l.event === 'broker_connected').length >= 2, 'resubscribed', 10_000);
    const a = await agent();
    await a.publishAsync(REPORT, 'after-restart', { qos: 1 });
    await waitFor(() => got.includes('after-restart'), 'message after restart', 10_000);
    expect(t.stats().connects).toBeGreaterThanOrEqual(2);
  });

  it('splits messages between two collectors in one share group, each delivered exactly once', async () => {
    const a1 = collector({ client_id: 'c-share-1', share_group: 'hw', clean_session: true });
    const a2 = collector({ client_id: 'c-share-2', share_group: 'hw', clean_session: true });
    const got1: string[] = [];
    const got2: string[] = [];
    a1.t.onMessage((m) => {
      got1.push(m.payload.toString());
    });
    a2.t.onMessage((m) => {
      got2.push(m.payload.toString());
    });
    await a1.t.start();
    await a2.t.start();
    const a = await agent();
    const sent = Array.from({ length: 20 }, (_, i) => `s${i}`);
    for (const body of sent) await a.publishAsync(REPORT, body, { qos: 1 });
    await waitFor(() => got1.length + got2.length >= sent.length, 'all shared messages');
    await sleep(200);
    expect([...got1, ...got2].sort()).toEqual([...sent].sort());
    expect(got1.length).toBeGreaterThan(0);
    expect(got2.length).toBeGreaterThan(0);
  });

  it('fails start() with a clear error on bad credentials', async () => {
    const { t } = collector({ client_id: 'c-badpw', password: 'nope', reconnect_period_ms: 60_000 });
    await expect(t.start()).rejects.toThrow(/Cannot connect to mqtt:\/\/127\.0\.0\.1:\d+ as c-badpw/);
  });
});
