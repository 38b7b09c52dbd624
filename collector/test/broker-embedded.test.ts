/**
 * The embedded aedes broker against real mqtt.js clients, raw sockets, TLS and WebSocket over
 * loopback: authentication, ACL, revocation, limits, and that the collector's handler only ever
 * sees what the ACL let through.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { COLLECTOR_STATE_TOPIC, checkConfig } from '@hashwatch/protocol';
import type { MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BrokerConfig } from '../src/broker/config.js';
import { addAgent, removeAgent } from '../src/broker/credentials.js';
import { BrokerStartError, type EmbeddedBroker } from '../src/broker/embedded.js';
import { createTransport } from '../src/broker/index.js';
import type { InboundMessage } from '../src/broker/transport.js';
import { captureLog, closed, connectClient, sleep, subscribeGranted, waitFor } from './broker-helpers.js';

let dir: string;
let credentialsFile: string;
let agent1: { username: string; password: string };
let agent2: { username: string; password: string };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hw-broker-'));
  credentialsFile = join(dir, 'credentials.yaml');
  agent1 = await addAgent(credentialsFile, 'site1', 'host1');
  agent2 = await addAgent(credentialsFile, 'site2', 'host2');
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

type EmbeddedOverrides = Record<string, unknown>;

async function startBroker(embedded: EmbeddedOverrides = {}, file = credentialsFile) {
  const capture = captureLog('info');
  const config = checkConfig(
    BrokerConfig,
    { mode: 'embedded', embedded: { port: 0, credentials_file: file, watch_credentials: false, ...embedded } },
    'test',
  );
  const broker = createTransport(config, capture.log, { collectorId: 'test-collector' }) as EmbeddedBroker;
  const received: InboundMessage[] = [];
  broker.onMessage((msg) => {
    received.push(msg);
  });
  await broker.start();
  cleanups.push(() => broker.stop());
  const url = `mqtt://127.0.0.1:${broker.ports.mqtt}`;
  return { broker, received, url, lines: capture.lines };
}

async function client(url: string, options: Parameters<typeof connectClient>[1] = {}): Promise<MqttClient> {
  const c = await connectClient(url, options);
  cleanups.push(() => {
    c.end(true);
  });
  return c;
}

function rawSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = netConnect({ host: '127.0.0.1', port }, () => resolve(s));
    s.once('error', reject);
    cleanups.push(() => {
      s.destroy();
    });
  });
}

function socketClosed(s: Socket, timeoutMs: number): Promise<number> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    if (s.destroyed) {
      resolve(0);
      return;
    }
    const timer = setTimeout(() => reject(new Error('socket was not closed in time')), timeoutMs);
    s.on('error', () => {});
    s.once('close', () => {
      clearTimeout(timer);
      resolve(Date.now() - started);
    });
  });
}

const report = (site: string, host: string) => `hw/v1/${site}/${host}/report`;

describe('embedded broker: authentication', () => {
  it('refuses a client without credentials and counts it', async () => {
    const { broker, url, lines } = await startBroker();
    await expect(connectClient(url)).rejects.toThrow(/Not authorized/i);
    expect(broker.stats().refusals.anonymous_refused).toBe(1);
    expect(lines.some((l) => l.event === 'broker_refusal' && l.reason === 'anonymous_refused')).toBe(true);
  });

  it('refuses a wrong password and an unknown user, and accepts the right one', async () => {
    const { broker, url } = await startBroker();
    await expect(connectClient(url, { username: agent1.username, password: 'wrong' })).rejects.toThrow(
      /Bad username or password/i,
    );
    await expect(connectClient(url, { username: 'nobody.here', password: agent1.password })).rejects.toThrow(
      /Bad username or password/i,
    );
    // Another agent's password does not open this agent's account.
    await expect(connectClient(url, { username: agent1.username, password: agent2.password })).rejects.toThrow(
      /Bad username or password/i,
    );
    const ok = await client(url, { username: agent1.username, password: agent1.password });
    expect(ok.connected).toBe(true);
    expect(broker.stats().refusals.bad_password).toBe(2);
    expect(broker.stats().refusals.unknown_user).toBe(1);
  });

  it('logs a repeated refusal of the same client once per window', async () => {
    const { broker, url, lines } = await startBroker();
    for (let i = 0; i < 3; i++) {
      await expect(
        connectClient(url, { clientId: 'same-client', username: agent1.username, password: 'wrong' }),
      ).rejects.toThrow();
    }
    expect(broker.stats().refusals.bad_password).toBe(3);
    expect(lines.filter((l) => l.reason === 'bad_password' && l.client === 'same-client')).toHaveLength(1);
  });
});

describe('embedded broker: ACL', () => {
  it("refuses a publish under another host's topic; the handler never sees it", async () => {
    const { broker, url, received } = await startBroker();
    const a = await client(url, { username: agent1.username, password: agent1.password });
    const gone = closed(a);
    a.publish(report('site1', 'host9'), '{"forged":true}', { qos: 1 });
    a.publish(report('site2', 'host2'), '{"forged":true}', { qos: 1 });
    await gone; // aedes drops a client whose publish is refused (MQTT 3.1.1 has no negative PUBACK)
    const b = await client(url, { username: agent1.username, password: agent1.password });
    await b.publishAsync(report('site1', 'host1'), '{"own":true}', { qos: 1 });
    // Agents may not forge what only the collector sends.
    const bGone = closed(b);
    b.publish('hw/v1/site1/host1/ack', '{"forged":"ack"}', { qos: 1 });
    b.publish(COLLECTOR_STATE_TOPIC, '{"forged":"state"}', { qos: 1 });
    await bGone;
    await waitFor(() => received.length >= 1, 'own report');
    await sleep(100);
    expect(received.map((m) => m.topic)).toEqual([report('site1', 'host1')]);
    expect(received[0]?.username).toBe(agent1.username);
    expect(received[0]?.payload.toString()).toBe('{"own":true}');
    expect(broker.stats().refusals.publish_denied).toBeGreaterThanOrEqual(2);
  });

  it("refuses wildcard and other hosts' subscriptions; the client only gets its own acks", async () => {
    const { broker, url } = await startBroker();
    const a = await client(url, { username: agent1.username, password: agent1.password });
    const got: string[] = [];
    a.on('message', (topic) => got.push(topic));
    const granted = await subscribeGranted(a, [
      'hw/v1/+/+/ack',
      'hw/v1/#',
      '#',
      '$SYS/#',
      'hw/v1/site2/host2/ack',
      'hw/v1/site1/host1/ack',
      'hw/v1/site1/host1/cmd',
    ]);
    expect(granted).toEqual([
      ['hw/v1/+/+/ack', 128],
      ['hw/v1/#', 128],
      ['#', 128],
      ['$SYS/#', 128],
      ['hw/v1/site2/host2/ack', 128],
      ['hw/v1/site1/host1/ack', 1],
      ['hw/v1/site1/host1/cmd', 1],
    ]);
    await broker.publish('hw/v1/site2/host2/ack', '{"other":true}', { qos: 1, retain: false });
    await broker.publish('hw/v1/site1/host1/ack', '{"own":true}', { qos: 1, retain: false });
    await waitFor(() => got.includes('hw/v1/site1/host1/ack'), 'own ack');
    await sleep(100);
    expect(got).toEqual(['hw/v1/site1/host1/ack']);
    expect(a.connected).toBe(true); // a refused subscription is negated, not a disconnect
    expect(broker.stats().refusals.subscribe_denied).toBe(5);
  });

  it('publishes the retained collector presence, which agents may read', async () => {
    const { url } = await startBroker();
    const a = await client(url, { username: agent2.username, password: agent2.password });
    const payloads: string[] = [];
    a.on('message', (topic, payload) => {
      if (topic === COLLECTOR_STATE_TOPIC) payloads.push(payload.toString());
    });
    await a.subscribeAsync(COLLECTOR_STATE_TOPIC, { qos: 1 });
    await waitFor(() => payloads.length === 1, 'retained collector state');
    expect(JSON.parse(payloads[0] as string)).toMatchObject({ v: 1, status: 'online', collector_id: 'test-collector' });
  });
});

describe('embedded broker: revocation', () => {
  it('drops a removed agent on reload() and refuses its credentials afterwards', async () => {
    const file = join(dir, 'revoke-reload.yaml');
    const gone = await addAgent(file, 'site3', 'host3');
    const stays = await addAgent(file, 'site3', 'host4');
    const { broker, url, lines } = await startBroker({}, file);
    const a = await client(url, { username: gone.username, password: gone.password });
    const b = await client(url, { username: stays.username, password: stays.password });
    const aClosed = closed(a);
    expect(await removeAgent(file, gone.username)).toBe(true);
    expect(await removeAgent(file, gone.username)).toBe(false);
    await broker.reload();
    await aClosed;
    await expect(connectClient(url, { username: gone.username, password: gone.password })).rejects.toThrow(
      /Bad username or password/i,
    );
    expect(b.connected).toBe(true);
    expect(broker.stats().refusals.revoked).toBe(1);
    expect(lines.some((l) => l.reason === 'revoked' && l.username === gone.username)).toBe(true);
  });

  it('notices a change of the credentials file by itself when watching', async () => {
    const file = join(dir, 'revoke-watch.yaml');
    const gone = await addAgent(file, 'site5', 'host5');
    const { url } = await startBroker({ watch_credentials: true }, file);
    const a = await client(url, { username: gone.username, password: gone.password });
    const aClosed = closed(a, 8_000);
    await removeAgent(file, gone.username);
    await aClosed;
    await expect(connectClient(url, { username: gone.username, password: gone.password })).rejects.toThrow(
      /Bad username or password/i,
    );
    // And a newly added agent can connect without a restart.
    const added = await addAgent(file, 'site5', 'host6');
    let connected: MqttClient | undefined;
    const deadline = Date.now() + 5_000;
    while (!connected && Date.now() < deadline) {
      connected = await connectClient(url, { username: added.username, password: added.password }).catch(
        () => undefined,
      );
      if (!connected) await sleep(100);
    }
    expect(connected?.connected).toBe(true);
    connected?.end(true);
  });
});

describe('embedded broker: start-up checks', () => {
  it('refuses anonymous access on a non-loopback address with a clear error', async () => {
    const capture = captureLog();
    const config = checkConfig(
      BrokerConfig,
      { embedded: { host: '0.0.0.0', port: 0, allow_anonymous: true, credentials_file: credentialsFile } },
      'test',
    );
    const broker = createTransport(config, capture.log);
    const failed = broker.start();
    await expect(failed).rejects.toBeInstanceOf(BrokerStartError);
    await expect(failed).rejects.toThrow(/allow_anonymous is true but the broker would listen on 0\.0\.0\.0/);
    expect(broker.health().up).toBe(false);
  });

  it('allows anonymous demo clients on loopback, with the anonymous ACL', async () => {
    const { url, received, broker } = await startBroker({ allow_anonymous: true });
    const a = await client(url);
    const granted = await subscribeGranted(a, ['hw/v1/+/+/ack', 'hw/v1/demo/rig-host/ack']);
    expect(granted.map(([, qos]) => qos)).toEqual([128, 1]);
    await a.publishAsync(report('demo', 'rig-host'), '{}', { qos: 1 });
    await waitFor(() => received.length === 1, 'anonymous report');
    expect(received[0]?.username).toBeUndefined();
    expect(broker.stats().refusals.subscribe_denied).toBe(1);
  });

  it('fails start-up naming the key when TLS is enabled without a certificate', async () => {
    const config = checkConfig(
      BrokerConfig,
      { embedded: { port: 0, credentials_file: credentialsFile, tls: { enabled: true, port: 0 } } },
      'test',
    );
    const broker = createTransport(config, captureLog().log);
    await expect(broker.start()).rejects.toThrow(/broker\.embedded\.tls\.cert_file is required/);
  });
});

describe('embedded broker: limits and hostile clients', () => {
  it('closes a TCP connection that never sends CONNECT after connect_timeout_ms', async () => {
    const { broker } = await startBroker({ connect_timeout_ms: 300 });
    const s = await rawSocket(broker.ports.mqtt as number);
    const tookMs = await socketClosed(s, 5_000);
    expect(tookMs).toBeGreaterThanOrEqual(200);
    await waitFor(() => broker.stats().refusals.connect_timeout === 1, 'connect_timeout counted');
  });

  it('refuses an oversized packet without crashing the broker', async () => {
    const { broker, url, received } = await startBroker({ max_packet_bytes: 4096 });
    const big = await client(url, { username: agent1.username, password: agent1.password });
    const gone = closed(big);
    big.publish(report('site1', 'host1'), Buffer.alloc(10_000, 0x61), { qos: 1 });
    await gone;
    expect(broker.stats().refusals.packet_too_large).toBe(1);
    // A header announcing 200 MiB is refused before any body arrives.
    const s = await rawSocket(broker.ports.mqtt as number);
    s.write(Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f]));
    await socketClosed(s, 5_000);
    expect(broker.stats().refusals.packet_too_large).toBe(2);
    const ok = await client(url, { username: agent1.username, password: agent1.password });
    await ok.publishAsync(report('site1', 'host1'), Buffer.alloc(1000, 0x62), { qos: 1 });
    await waitFor(() => received.length === 1, 'normal report after refusals');
    expect(received[0]?.payload.length).toBe(1000);
    expect(broker.health().up).toBe(true);
  });

  it('closes only the client that sends malformed bytes', async () => {
    const { broker, url, received } = await startBroker();
    const good = await client(url, { username: agent2.username, password: agent2.password });
    for (const garbage of [
      Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), // remaining length longer than 4 bytes
      Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'),
      Buffer.from([0x10, 0x04, 0x00, 0x02, 0x41, 0x42]), // CONNECT with a truncated, bogus protocol name
    ]) {
      const s = await rawSocket(broker.ports.mqtt as number);
      s.write(garbage);
      await socketClosed(s, 12_000);
    }
    expect(good.connected).toBe(true);
    await good.publishAsync(report('site2', 'host2'), '{"still":"fine"}', { qos: 1 });
    await waitFor(() => received.length === 1, 'report from the good client');
    expect(broker.health().up).toBe(true);
  });

  it('caps concurrent connections per address', async () => {
    const { broker } = await startBroker({ max_connections_per_address: 2 });
    const port = broker.ports.mqtt as number;
    const s1 = await rawSocket(port);
    const s2 = await rawSocket(port);
    const s3 = await rawSocket(port);
    await socketClosed(s3, 3_000);
    expect(s1.destroyed || s2.destroyed).toBe(false);
    expect(broker.stats().refusals.too_many_from_address).toBe(1);
  });

  it('rate-limits new connections per address', async () => {
    const { broker } = await startBroker({ max_connects_per_address_per_minute: 3 });
    const port = broker.ports.mqtt as number;
    for (let i = 0; i < 3; i++) (await rawSocket(port)).destroy();
    const s = await rawSocket(port);
    await socketClosed(s, 3_000);
    expect(broker.stats().refusals.rate_limited).toBe(1);
  });

  it('refuses a client whose keepalive is off or above max_keepalive_s', async () => {
    const { url } = await startBroker({ max_keepalive_s: 120 });
    await expect(
      connectClient(url, { username: agent1.username, password: agent1.password, keepalive: 0 }),
    ).rejects.toThrow();
    await expect(
      connectClient(url, { username: agent1.username, password: agent1.password, keepalive: 121 }),
    ).rejects.toThrow();
    const ok = await client(url, { username: agent1.username, password: agent1.password, keepalive: 60 });
    expect(ok.connected).toBe(true);
  });
});

describe('embedded broker: other transports', () => {
  it('carries MQTT over WebSocket end to end', async () => {
    const { broker, received } = await startBroker({ websocket: { enabled: true, port: 0 } });
    const ws = await client(`ws://127.0.0.1:${broker.ports.ws}/mqtt`, {
      username: agent1.username,
      password: agent1.password,
    });
    const acks: string[] = [];
    ws.on('message', (_t, p) => acks.push(p.toString()));
    await ws.subscribeAsync('hw/v1/site1/host1/ack', { qos: 1 });
    await ws.publishAsync(report('site1', 'host1'), '{"via":"ws"}', { qos: 1 });
    await waitFor(() => received.length === 1, 'report over WebSocket');
    expect(received[0]?.username).toBe(agent1.username);
    await broker.publish('hw/v1/site1/host1/ack', '{"seq":1}', { qos: 1, retain: false });
    await waitFor(() => acks.length === 1, 'ack over WebSocket');
  });

  it('carries MQTT over TLS end to end with a self-signed certificate', async () => {
    if (!existsSync('/usr/bin/openssl'))
      throw new Error('/usr/bin/openssl is missing: needed to make a test certificate');
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    execFileSync(
      '/usr/bin/openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=IP:127.0.0.1,DNS:localhost',
        '-keyout',
        key,
        '-out',
        cert,
      ],
      { stdio: 'ignore' },
    );
    const { broker, received } = await startBroker({ tls: { enabled: true, port: 0, cert_file: cert, key_file: key } });
    const ca = await readFile(cert);
    const tls = await client(`mqtts://127.0.0.1:${broker.ports.mqtts}`, {
      username: agent2.username,
      password: agent2.password,
      ca,
      rejectUnauthorized: true,
    });
    await tls.publishAsync(report('site2', 'host2'), '{"via":"tls"}', { qos: 1 });
    await waitFor(() => received.length === 1, 'report over TLS');
    expect(received[0]?.payload.toString()).toBe('{"via":"tls"}');
    // A client that does not trust the certificate is not let in.
    await expect(
      connectClient(`mqtts://127.0.0.1:${broker.ports.mqtts}`, {
        username: agent2.username,
        password: agent2.password,
        rejectUnauthorized: true,
      }),
    ).rejects.toThrow(/self[- ]signed|certificate/i);
  });
});
