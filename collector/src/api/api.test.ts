import fs from 'node:fs';
import { request } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { exampleBirth, exampleReport } from '@hashwatch/protocol';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Loose } from '../../test/helpers/aedes-transport.js';
import { HttpServer } from '../http/server.js';
import { Store } from '../store/store.js';
import { registerApi } from './routes.js';

const TOKEN = 'secret-token-123';
const NOW = Date.UTC(2026, 5, 10, 12);
let dir: string;
let store: Store;
let http: HttpServer;
let transportUp = true;

/** GET with the path sent verbatim (fetch would normalise `..` away before the server sees it). */
function get(urlPath: string, token: string | null = TOKEN): Promise<{ status: number; body: Loose }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port: http.port, path: urlPath, headers: token ? { authorization: `Bearer ${token}` } : {} },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString()) }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hw-api-'));
  store = new Store({ path: path.join(dir, 'hw.db'), busyTimeoutMs: 200, cacheSizeMiB: 8, checkpointPages: 1000 });
  store.open();
  store.recordBirth('farm-a', 'host-1', exampleBirth(NOW), NOW);
  const ref = store.ensureHost('farm-a', 'host-1', NOW);
  store.commitReports(
    [0, 1, 2].map((seq) => ({
      site: 'farm-a',
      host: 'host-1',
      hostId: ref.hostId,
      report: exampleReport(NOW - (2 - seq) * 60_000, 2, seq),
      receivedMs: NOW,
      skewMs: 0,
      skewed: false,
    })),
  );
  http = new HttpServer({ host: '127.0.0.1', port: 0, apiToken: TOKEN, maxBodyBytes: 1024 }, pino({ level: 'silent' }));
  registerApi(
    http,
    { maxSpanMs: 31 * 86_400_000, maxRows: 1000 },
    { store, transportHealth: () => ({ up: transportUp, mode: 'embedded' }), now: () => NOW },
  );
  await http.start();
});

afterAll(async () => {
  await http.stop();
  store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('API', () => {
  it('serves health and readiness with detail', async () => {
    expect(await get('/healthz', null)).toEqual({ status: 200, body: { status: 'ok' } });
    const ready = await get('/readyz', null);
    expect(ready.status).toBe(200);
    expect(ready.body.store.ok).toBe(true);
    transportUp = false;
    const notReady = await get('/readyz', null);
    transportUp = true;
    expect(notReady.status).toBe(503);
    expect(notReady.body.transport.up).toBe(false);
  });

  it('requires the bearer token on API routes', async () => {
    const res = await get('/api/v1/sites', null);
    expect(res.status).toBe(401);
    expect(res.body.error).toMatchObject({ status: 401, code: 'HW_ERR_UNAUTHORIZED' });
    expect((await get('/api/v1/sites', 'wrong-token-xyz')).status).toBe(401);
  });

  it('lists sites, hosts and rigs with their latest figures', async () => {
    expect((await get('/api/v1/sites')).body.sites).toEqual([
      { site: 'farm-a', hosts: 1, rigs: 2, state: null, state_since_ms: null },
    ]);
    const hosts = await get('/api/v1/sites/farm-a/hosts');
    expect(hosts.body.hosts[0]).toMatchObject({ host: 'host-1', rigs: 2, agent_version: '0.1.0' });
    const host = await get('/api/v1/hosts/farm-a/host-1');
    expect(host.body.latest_probes).toHaveLength(3);
    const rigs = await get('/api/v1/rigs?site=farm-a&host=host-1');
    expect(rigs.body.rigs).toHaveLength(2);
    expect(rigs.body.rigs[0]).toMatchObject({
      rig: 'rig-01',
      model: 'Antminer S19 Pro',
      latest: { ts: NOW, hashrate_hs: 110e12 },
    });
  });

  it('serves a rig series, raw and stepped', async () => {
    const raw = await get(`/api/v1/rigs/farm-a/host-1/rig-01/samples?from=${NOW - 3_600_000}&to=${NOW + 1}`);
    expect(raw.status).toBe(200);
    expect(raw.body.points.map((p: { ts: number }) => p.ts)).toEqual([NOW - 120_000, NOW - 60_000, NOW]);
    const iso = new Date(NOW - 3_600_000).toISOString();
    const stepped = await get(`/api/v1/rigs/farm-a/host-1/rig-01/samples?from=${iso}&to=${NOW}&step=1h`);
    expect(stepped.body.points).toEqual([
      expect.objectContaining({ ts: NOW - 3_600_000, n: 2, hashrate_hs: 110e12, reachable_ratio: 1 }),
    ]);
  });

  it('answers unknown things with a JSON 404', async () => {
    expect((await get('/api/v1/sites/farm-z')).body.error).toMatchObject({ status: 404, code: 'HW_ERR_NOT_FOUND' });
    expect((await get('/nope')).status).toBe(404);
    expect((await get('/api/v1/rigs/farm-a/host-1/rig-99/samples')).status).toBe(404);
  });

  it.each([
    ['/api/v1/hosts/farm-a/..%2F..%2Fetc%2Fpasswd', 'HW_ERR_BAD_PARAM'],
    ['/api/v1/sites/..', 'HW_ERR_BAD_PARAM'],
    ['/api/v1/hosts/farm-a/%2E%2E', 'HW_ERR_BAD_PARAM'],
    ["/api/v1/sites/farm'%20OR%201=1--", 'HW_ERR_BAD_PARAM'],
    ['/api/v1/sites/farm-a%3BDROP%20TABLE%20samples', 'HW_ERR_BAD_PARAM'],
    ["/api/v1/rigs?site=x'%20UNION%20SELECT%201--", 'HW_ERR_BAD_PARAM'],
    ['/api/v1/rigs?host=host-1', 'HW_ERR_BAD_PARAM'],
    ['/api/v1/rigs/farm-a/host-1/rig-01%2F..%2F..%2Fx/samples', 'HW_ERR_BAD_PARAM'],
    [`/api/v1/rigs/farm-a/host-1/rig-01/samples?from=${NOW}&to=${NOW - 1}`, 'HW_ERR_BAD_RANGE'],
    [`/api/v1/rigs/farm-a/host-1/rig-01/samples?from=0&to=${NOW}`, 'HW_ERR_BAD_RANGE'],
    ['/api/v1/rigs/farm-a/host-1/rig-01/samples?from=yesterday', 'HW_ERR_BAD_RANGE'],
    ['/api/v1/rigs/farm-a/host-1/rig-01/samples?from=1e3', 'HW_ERR_BAD_RANGE'],
    ['/api/v1/rigs/farm-a/host-1/rig-01/samples?step=-5', 'HW_ERR_BAD_PARAM'],
    ['/api/v1/incidents?open=maybe', 'HW_ERR_BAD_PARAM'],
    ['/api/v1/attribution?from=2026-13-45T99:00:00Z', 'HW_ERR_BAD_RANGE'],
    ['/api/v1/sites/%E0%A4%A', 'HW_ERR_BAD_URL'],
  ])('rejects %s with a 400 JSON error', async (url, code) => {
    const res = await get(url);
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ status: 400, code });
    expect(typeof res.body.error.message).toBe('string');
  });

  it('serves incidents and attribution over a range', async () => {
    const incidents = await get(`/api/v1/incidents?from=${NOW - 86_400_000}&to=${NOW}&site=farm-a&open=true`);
    expect(incidents.body).toEqual({ incidents: [] });
    const a = await get('/api/v1/attribution?site=farm-a');
    expect(a.body).toMatchObject({ site: 'farm-a', total_deficit_hashes: 0, by_cause: [] });
  });
});
