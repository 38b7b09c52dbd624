/**
 * "Nobody in": one collector with credentials required (no anonymous MQTT), an API token and a
 * live-view token, attacked over loopback: malformed and oversized MQTT packets, a client that
 * never sends CONNECT, 3000 connections from one address, topic spoofing with another agent's
 * credentials, wildcard subscriptions, a removed agent's credentials, requests without the token,
 * and path traversal / SQL-looking strings in every id the API accepts.
 * Needs `npx tsc -b` first.
 */
import net from 'node:net';
import { agentTopic, exampleBirth, exampleReport } from '@hashwatch/protocol';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { removeAgent } from '../../collector/src/broker/credentials.js';
import { flush, record } from '../fault/results.js';
import { cleanupAll, sleep, waitFor } from '../helpers/proc.js';
import { addAgentCli, type CollectorHandle, readStore, startCollector } from '../helpers/stack.js';
import { byLabel, scrape } from './metrics.js';

const TOKEN = 'sec-test-token-0123456789abcdef';
const SITE = 'sec';
let collector: CollectorHandle;
let credA: { username: string; password: string };
let credB: { username: string; password: string };
let credC: { username: string; password: string };

function row(fault: string, checked: string, held: boolean, tried: number, note?: string): void {
  record({
    group: 'security-attacks',
    kind: 'input',
    fault,
    checked,
    held,
    produced: tried,
    lost: 0,
    duplicates: 0,
    ...(note ? { note } : {}),
  });
}

function mqttConnect(cred: { username: string; password: string }, clientId: string): Promise<mqtt.MqttClient> {
  return mqtt.connectAsync(collector.mqttUrl, {
    username: cred.username,
    password: cred.password,
    clientId,
    reconnectPeriod: 0,
    connectTimeout: 5000,
  });
}

/** Opens a raw TCP socket, writes `bytes`, resolves with whether the server closed it within `ms`. */
function rawSession(bytes: Buffer[], ms: number): Promise<{ closed: boolean; received: number }> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port: collector.mqttPort });
    let received = 0;
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ closed, received });
    };
    const timer = setTimeout(() => finish(false), ms);
    s.on('data', (d: Buffer) => {
      received += d.length;
    });
    s.on('error', () => finish(true));
    s.on('close', () => finish(true));
    s.on('connect', () => {
      for (const b of bytes) if (!s.destroyed) s.write(b);
    });
  });
}

/** An MQTT 3.1.1 CONNECT packet (no will), built by hand so it can be made wrong on purpose. */
function connectPacket(o: {
  protocol?: string;
  keepalive?: number;
  clientId?: string;
  username?: string;
  password?: string;
}): Buffer {
  const str = (v: string) => {
    const b = Buffer.from(v);
    const len = Buffer.alloc(2);
    len.writeUInt16BE(b.length);
    return Buffer.concat([len, b]);
  };
  let flags = 0x02;
  if (o.username !== undefined) flags |= 0x80;
  if (o.password !== undefined) flags |= 0x40;
  const ka = Buffer.alloc(2);
  ka.writeUInt16BE(o.keepalive ?? 30);
  const body = Buffer.concat([
    str(o.protocol ?? 'MQTT'),
    Buffer.from([4, flags]),
    ka,
    str(o.clientId ?? 'raw'),
    ...(o.username !== undefined ? [str(o.username)] : []),
    ...(o.password !== undefined ? [str(o.password)] : []),
  ]);
  return Buffer.concat([Buffer.from([0x10]), varint(body.length), body]);
}

function varint(n: number): Buffer {
  const out: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return Buffer.from(out);
}

beforeAll(async () => {
  collector = await startCollector({
    name: 'sec',
    anonymous: false,
    apiToken: TOKEN,
    extra: {
      live: { enabled: true, token: TOKEN },
      broker: { embedded: { connect_timeout_ms: 1000, refusal_log_interval_ms: 60_000 } },
    },
  });
  credA = await addAgentCli(collector, SITE, 'host-a');
  credB = await addAgentCli(collector, SITE, 'host-b');
  credC = await addAgentCli(collector, SITE, 'host-c');
  // Real data for host-a, so "never data of another id" has something to leak.
  await sleep(500);
  const a = await mqttConnect(credA, 'sec-a-seed');
  await a.publishAsync(agentTopic(SITE, 'host-a', 'birth'), JSON.stringify(exampleBirth(Date.now())), {
    qos: 1,
    retain: true,
  });
  for (let seq = 0; seq < 5; seq++) {
    await a.publishAsync(
      agentTopic(SITE, 'host-a', 'report'),
      JSON.stringify(exampleReport(Date.now() - (5 - seq) * 1000, 2, seq)),
      { qos: 1 },
    );
  }
  await a.endAsync();
  await waitFor(
    () => (readStore(collector.dbPath).reports.get(`${SITE}/host-a`)?.size ?? 0) === 5,
    'seed reports stored',
    15_000,
  );
}, 90_000);

afterAll(async () => {
  flush('security-attacks');
  await cleanupAll();
}, 30_000);

describe('attacks on the broker', () => {
  it('malformed and oversized MQTT packets close only the offending connection', async () => {
    const garbage = Buffer.from(Array.from({ length: 64 }, (_, i) => (i * 37 + 11) % 256));
    const cases: { name: string; bytes: Buffer[] }[] = [
      { name: 'random bytes', bytes: [garbage] },
      {
        name: 'CONNECT with protocol "XXXX"',
        bytes: [connectPacket({ protocol: 'XXXX', username: credA.username, password: credA.password })],
      },
      { name: '5-byte remaining length', bytes: [Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0x7f])] },
      { name: 'PUBLISH before CONNECT', bytes: [Buffer.from([0x30, 0x07, 0x00, 0x03, 0x61, 0x2f, 0x62, 0x68, 0x69])] },
      {
        name: 'header announcing 200 MiB',
        bytes: [Buffer.concat([Buffer.from([0x30]), varint(200 * 1024 * 1024)]), Buffer.alloc(256 * 1024)],
      },
      {
        name: 'valid CONNECT then a 2 MiB PUBLISH',
        bytes: [
          connectPacket({ clientId: 'sec-big', username: credA.username, password: credA.password }),
          (() => {
            const topic = Buffer.from(agentTopic(SITE, 'host-a', 'report'));
            const len = Buffer.alloc(2);
            len.writeUInt16BE(topic.length);
            const body = Buffer.concat([len, topic, Buffer.alloc(2 * 1024 * 1024, 0x41)]);
            return Buffer.concat([Buffer.from([0x30]), varint(body.length), body]);
          })(),
        ],
      },
      {
        name: 'CONNECT with keepalive 0',
        bytes: [
          connectPacket({ keepalive: 0, clientId: 'sec-ka0', username: credA.username, password: credA.password }),
        ],
      },
      {
        name: 'second CONNECT on one connection',
        bytes: [
          connectPacket({ clientId: 'sec-dbl', username: credA.username, password: credA.password }),
          connectPacket({ clientId: 'sec-dbl', username: credA.username, password: credA.password }),
        ],
      },
      {
        name: 'CONNECT with a wrong password',
        bytes: [connectPacket({ clientId: 'sec-pw', username: credA.username, password: 'wrong' })],
      },
    ];
    const outcomes = await Promise.all(cases.map((c) => rawSession(c.bytes, 8000)));
    const notClosed = cases.filter((_, i) => !outcomes[i]?.closed).map((c) => c.name);
    const alive = collector.proc.alive;
    const metrics = await scrape(collector);
    const refused = byLabel(metrics, 'hashwatch_broker_connections_refused_total', 'reason');
    const held = notClosed.length === 0 && alive;
    row(
      `${cases.length} malformed/oversized MQTT sessions: ${cases.map((c) => c.name).join('; ')}`,
      `each connection closed by the broker, collector alive, refusals counted (${Object.entries(refused)
        .filter(([, n]) => n > 0)
        .map(([k, n]) => `${k} ${n}`)
        .join(', ')})`,
      held,
      cases.length,
    );
    expect(notClosed).toEqual([]);
    expect(alive).toBe(true);
    expect(refused.packet_too_large ?? 0).toBeGreaterThan(0);
    // A legitimate agent still gets in.
    const ok = await mqttConnect(credA, 'sec-a-after-malformed');
    await ok.endAsync();
  }, 60_000);

  it('a client that connects and never sends is closed after connect_timeout_ms', async () => {
    const started = Date.now();
    const r = await rawSession([], 10_000);
    const ms = Date.now() - started;
    row(
      'TCP connection that never sends CONNECT (slowloris)',
      `closed by the broker after ${ms} ms (connect_timeout_ms 1000)`,
      r.closed && ms < 5000,
      1,
    );
    expect(r.closed).toBe(true);
    expect(ms).toBeLessThan(5000);
  }, 20_000);

  it('3000 connections from one address are capped and the broker keeps serving', async () => {
    const N = 3000;
    const sockets: net.Socket[] = [];
    let closedByServer = 0;
    let errors = 0;
    const rssBefore = collector.proc.rssKb() ?? 0;
    try {
      for (let i = 0; i < N; i += 250) {
        await Promise.all(
          Array.from({ length: Math.min(250, N - i) }, () => {
            return new Promise<void>((resolve) => {
              const s = net.connect({ host: '127.0.0.1', port: collector.mqttPort });
              sockets.push(s);
              s.once('connect', () => resolve());
              s.once('error', () => {
                errors++;
                resolve();
              });
              s.once('close', () => {
                closedByServer++;
                resolve();
              });
            });
          }),
        );
      }
      await sleep(500);
      const openNow = sockets.filter((s) => !s.destroyed && s.readyState === 'open').length;
      const metrics = await scrape(collector);
      const refused = byLabel(metrics, 'hashwatch_broker_connections_refused_total', 'reason');
      const capped = (refused.too_many_from_address ?? 0) + (refused.rate_limited ?? 0);
      const rssPeak = collector.proc.rssKb() ?? 0;
      for (const s of sockets) s.destroy();
      // The per-address token bucket refills; a real agent must get in again within seconds.
      let agentIn = false;
      const deadline = Date.now() + 20_000;
      while (!agentIn && Date.now() < deadline) {
        try {
          const c = await mqttConnect(credA, 'sec-a-after-flood');
          await c.endAsync();
          agentIn = true;
        } catch {
          await sleep(500);
        }
      }
      const held = collector.proc.alive && openNow <= 1000 && capped > 0 && agentIn;
      row(
        `${N} TCP connections from 127.0.0.1 (250 at a time)`,
        `at most max_connections_per_address (1000) stay open (${openNow}); ${capped} refused (too_many_from_address/rate_limited); RSS ${Math.round(rssBefore / 1024)} → ${Math.round(rssPeak / 1024)} MiB; an agent gets in afterwards`,
        held,
        N,
      );
      expect(collector.proc.alive).toBe(true);
      expect(openNow).toBeLessThanOrEqual(1000);
      expect(capped).toBeGreaterThan(0);
      expect(agentIn).toBe(true);
      expect(closedByServer + errors).toBeGreaterThan(0);
    } finally {
      for (const s of sockets) s.destroy();
    }
  }, 90_000);

  it('agent A cannot publish as host B nor read other hosts or sites', async () => {
    const a = await mqttConnect(credA, 'sec-a-spoof');
    const closed = new Promise<void>((resolve) => a.once('close', () => resolve()));
    a.on('error', () => {});
    const filters = [
      'hw/v1/+/+/report',
      'hw/v1/#',
      '#',
      `hw/v1/${SITE}/host-b/ack`,
      'hw/v1/other/host-x/cmd',
      '$SYS/#',
      `hw/v1/${SITE}/+/ack`,
    ];
    // One SUBSCRIBE per filter: mqtt.js rejects a SUBACK holding 0x80, so each is judged alone.
    const granted: { topic: string; qos: number }[] = [];
    for (const topic of filters) {
      try {
        const g = await a.subscribeAsync(topic, { qos: 1 });
        granted.push({ topic, qos: g[0]?.qos ?? -1 });
      } catch (err) {
        const packet = (err as { packet?: { granted?: number[] } }).packet;
        granted.push({ topic, qos: packet?.granted?.[0] ?? (/Subscribe error/.test(String(err)) ? 128 : -1) });
      }
    }
    const deniedAll = granted.every((g) => g.qos === 128);
    const own = await a.subscribeAsync(agentTopic(SITE, 'host-a', 'ack'), { qos: 1 });
    // Spoofed publish: the broker closes the client (3.1.1 has no negative PUBACK).
    a.publish(agentTopic(SITE, 'host-b', 'report'), JSON.stringify(exampleReport(Date.now(), 2, 0)), { qos: 1 });
    a.publish(agentTopic(SITE, 'host-b', 'ack'), JSON.stringify({ v: 1, ts: Date.now(), acks: [] }), { qos: 0 });
    let wasClosed = false;
    await Promise.race([closed.then(() => (wasClosed = true)), sleep(5000)]);
    a.end(true);
    await sleep(500);
    const storedB = readStore(collector.dbPath).reports.get(`${SITE}/host-b`)?.size ?? 0;
    const held = deniedAll && own[0]?.qos === 1 && wasClosed && storedB === 0;
    row(
      `agent A publishes as host B; subscribes ${filters.join(', ')}`,
      'every foreign/wildcard SUBACK is 0x80, own ack granted, spoofing client closed, nothing stored for host B',
      held,
      filters.length + 2,
    );
    expect(granted.map((g) => g.qos)).toEqual(filters.map(() => 128));
    expect(own[0]?.qos).toBe(1);
    expect(wasClosed).toBe(true);
    expect(storedB).toBe(0);
  }, 30_000);

  it('a removed agent is disconnected and its replayed credentials are refused', async () => {
    const c = await mqttConnect(credC, 'sec-c');
    c.on('error', () => {});
    const closed = new Promise<void>((resolve) => c.once('close', () => resolve()));
    expect(await removeAgent(collector.credentialsFile, credC.username)).toBe(true);
    let dropped = false;
    await Promise.race([closed.then(() => (dropped = true)), sleep(10_000)]);
    c.end(true);
    let refused = false;
    let reason = '';
    try {
      const again = await mqttConnect(credC, 'sec-c-again');
      await again.endAsync();
    } catch (err) {
      refused = true;
      reason = (err as Error).message;
    }
    row(
      'credentials of an agent removed from the credentials file (live session, then replayed)',
      `live session dropped on reload, reconnect refused (${reason})`,
      dropped && refused,
      2,
    );
    expect(dropped).toBe(true);
    expect(refused).toBe(true);
    void credB;
  }, 30_000);
});

describe('attacks on the HTTP API and live view', () => {
  const routes = (site: string, host: string, rig: string) => [
    `/api/v1/sites/${site}`,
    `/api/v1/sites/${site}/hosts`,
    `/api/v1/hosts/${site}/${host}`,
    `/api/v1/rigs?site=${site}`,
    `/api/v1/rigs?site=${SITE}&host=${host}`,
    `/api/v1/rigs/${site}/${host}/${rig}/samples`,
    `/api/v1/rigs/${SITE}/host-a/${rig}/samples`,
    `/api/v1/incidents?site=${site}`,
    `/api/v1/attribution?site=${site}`,
    `/api/v1/rigs/${SITE}/host-a/rig-01/samples?from=${site}`,
    `/api/v1/incidents?from=${site}&to=${site}`,
    `/api/v1/rigs/${SITE}/host-a/rig-01/samples?step=${site}`,
  ];

  it('requests without the token are refused (API and WebSocket)', async () => {
    const paths = [...routes(SITE, 'host-a', 'rig-01'), '/api/v1/sites'];
    const statuses = await Promise.all(paths.map(async (p) => (await collector.get(p)).status));
    const wrong = await Promise.all(paths.map(async (p) => (await collector.get(p, 'not-the-token')).status));
    const right = (await collector.get('/api/v1/sites', TOKEN)).status;
    const ws = (headers: Record<string, string>, query = '') =>
      new Promise<number>((resolve) => {
        const sock = new WebSocket(`ws://127.0.0.1:${collector.httpPort}/live${query}`, {
          headers,
          handshakeTimeout: 5000,
        });
        sock.on('unexpected-response', (_req, res) => {
          resolve(res.statusCode ?? 0);
          sock.terminate();
        });
        sock.on('open', () => {
          resolve(101);
          sock.close();
        });
        sock.on('error', () => resolve(-1));
      });
    const wsNoToken = await ws({});
    const wsWrong = await ws({ authorization: 'Bearer nope' });
    const wsRight = await ws({}, `?token=${TOKEN}`);
    const held =
      statuses.every((s) => s === 401) &&
      wrong.every((s) => s === 401) &&
      right === 200 &&
      wsNoToken === 401 &&
      wsWrong === 401 &&
      wsRight === 101;
    row(
      `${paths.length} API routes and /live without / with a wrong token`,
      `401 without and with a wrong token (API ${[...new Set([...statuses, ...wrong])].join('/')}; WS ${wsNoToken}/${wsWrong}); 200/101 with it`,
      held,
      paths.length * 2 + 3,
    );
    expect(
      statuses.every((s) => s === 401),
      `API statuses without token: ${statuses}`,
    ).toBe(true);
    expect(wrong.every((s) => s === 401)).toBe(true);
    expect(right).toBe(200);
    expect(wsNoToken).toBe(401);
    expect(wsWrong).toBe(401);
    expect(wsRight).toBe(101);
  }, 30_000);

  it('path traversal and SQL-looking ids get 400/404 JSON, never 500, never another id’s data', async () => {
    const evil = [
      '..',
      '..%2F..%2Fetc%2Fpasswd',
      '%2e%2e%2f%2e%2e%2fetc%2fpasswd',
      '....//....//etc',
      "'%20OR%201%3D1%20--",
      '%22%3B%20DROP%20TABLE%20reports%3B%20--',
      'sec%27--',
      'sec%00',
      '%00',
      'se_',
      'se%25',
      '*',
      'SEC',
      'host-a%20',
      'a'.repeat(300),
      '%F0%9F%92%A5',
      '%ZZ',
      'host-a%2F..%2Fhost-b',
      '1%3B%20SELECT%20*%20FROM%20hosts',
      'null',
      '-1',
      '%5B%5D',
    ];
    const tried: { path: string; status: number; body: string }[] = [];
    for (const e of evil) {
      const paths = [...routes(e, e, e), ...routes(SITE, e, e), ...routes(e, 'host-a', 'rig-01')];
      // Only requests that carry the hostile id (the route lists also hold well-formed ones).
      for (const p of [...new Set(paths)].filter((x) => x.includes(e))) {
        const res = await collector.get(p, TOKEN);
        tried.push({ path: p, status: res.status, body: res.text });
      }
    }
    const bad = tried.filter((t) => {
      if (t.status === 400 || t.status === 404) {
        try {
          const body = JSON.parse(t.body) as { error?: { code?: string } };
          return typeof body.error?.code !== 'string';
        } catch {
          return true;
        }
      }
      // 200 only for a well-formed filter that matches nothing, and then with no rows of host-a.
      if (t.status === 200) return /host-a|rig-01/.test(t.body);
      return true;
    });
    const server500 = tried.filter((t) => t.status >= 500).length;
    const held = bad.length === 0 && server500 === 0 && collector.proc.alive;
    row(
      `${tried.length} API requests with ${evil.length} traversal / SQL / wildcard / encoding ids in every path and query id`,
      `400/404 JSON errors (${[...new Set(tried.map((t) => t.status))].sort().join('/')}), no 500, no other id’s data`,
      held,
      tried.length,
    );
    expect(bad.slice(0, 5)).toEqual([]);
    expect(server500).toBe(0);
    // The data is still there for the right id.
    const ok = await collector.get(`/api/v1/rigs?site=${SITE}&host=host-a`, TOKEN);
    expect(ok.status).toBe(200);
    expect(ok.text).toContain('rig-01');
  }, 120_000);
});
