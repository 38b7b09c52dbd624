import { once } from 'node:events';
import { createServer, type IncomingMessage, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { FleetView } from '../fleet/view.js';
import { createMetricsHandler, type MetricsHandlerOptions } from './handler.js';
import { type MetricsSources, renderFleetMetrics } from './render.js';
import { createRuntimeRegistry } from './runtime.js';

const NOW_MS = Date.UTC(2026, 0, 15, 12);

let server: Server | undefined;

afterEach(async () => {
  if (server) {
    server.close();
    await once(server, 'close');
    server = undefined;
  }
});

async function serve(sources: MetricsSources, options: MetricsHandlerOptions): Promise<number> {
  server = createServer(createMetricsHandler(sources, options));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

function get(
  port: number,
  options: { method?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/metrics',
        method: options.method ?? 'GET',
        headers: options.headers,
        timeout: 10_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
      },
    );
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end();
  });
}

function smallFleet(): FleetView {
  const fleet = new FleetView();
  fleet.upsertHost('s1', 'h1', { online: true, state: 'ok' }, NOW_MS);
  fleet.upsertRig('s1', 'h1', 'r1', { state: 'ok', expectedHashrateHs: 100 }, NOW_MS);
  fleet.recordSample('s1', 'h1', { rig: 'r1', ts: NOW_MS, reachable: true, hashrate_hs: 95 }, NOW_MS);
  return fleet;
}

describe('createMetricsHandler', () => {
  it('serves the exposition as text/plain version 0.0.4', async () => {
    const port = await serve({ fleet: smallFleet() }, { perRig: true, now: () => NOW_MS });
    const res = await get(port);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    const text = res.body.toString('utf8');
    expect(text).toContain('hashwatch_rig_hashrate_hashes_per_second{site="s1",host="h1",rig="r1"} 95');
    expect(Number(res.headers['content-length'])).toBe(res.body.length);
  });

  it('honours perRig: false', async () => {
    const port = await serve({ fleet: smallFleet() }, { perRig: false, now: () => NOW_MS });
    const text = (await get(port)).body.toString('utf8');
    expect(text).toContain('hashwatch_host_hashrate_hashes_per_second{site="s1",host="h1"} 95');
    expect(text).not.toContain('rig="r1"');
  });

  it('gzips when asked and appends runtime metrics', async () => {
    const port = await serve({ fleet: smallFleet(), runtime: createRuntimeRegistry() }, { perRig: true });
    const res = await get(port, { headers: { 'accept-encoding': 'gzip' } });
    expect(res.status).toBe(200);
    expect(res.headers['content-encoding']).toBe('gzip');
    // RFC 1952's XFL byte: 4 = the fastest level (the default level 6 writes 0 and costs 4× the CPU)
    expect(res.body[8]).toBe(4);
    const text = gunzipSync(res.body).toString('utf8');
    expect(text).toContain('hashwatch_agent_up{site="s1",host="h1"} 1');
    expect(text).toContain('process_resident_memory_bytes');
  });

  it('answers HEAD without a body and refuses other methods', async () => {
    const port = await serve({ fleet: smallFleet() }, { perRig: true });
    const head = await get(port, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.body.length).toBe(0);
    const post = await get(port, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers['allow']).toBe('GET, HEAD');
  });

  it('serves the same page as the renderer on every scrape, plain and gzipped', async () => {
    const sources = { fleet: smallFleet() };
    const page = renderFleetMetrics(sources, { perRig: true, nowMs: NOW_MS });
    const port = await serve(sources, { perRig: true, now: () => NOW_MS });
    for (let i = 0; i < 3; i++) {
      const plain = await get(port);
      expect(plain.body.toString('utf8')).toBe(page);
      expect(Number(plain.headers['content-length'])).toBe(plain.body.length);
      const zipped = await get(port, { headers: { 'accept-encoding': 'gzip' } });
      expect(gunzipSync(zipped.body).toString('utf8')).toBe(page);
      expect(Number(zipped.headers['content-length'])).toBe(zipped.body.length);
    }
  });

  it('never lets a scrape overwrite a page that a slow client is still receiving', async () => {
    // ~16 MB of page: more than loopback socket buffers hold, so the first response is still
    // queued (from the handler's page buffer) while the second scrape renders.
    const fleet = new FleetView();
    const model = (c: string) => c.repeat(100_000);
    for (let i = 0; i < 160; i++) fleet.upsertRig('s1', 'h1', `r${i}`, { model: model('a') }, NOW_MS);
    const sources = { fleet };
    const before = renderFleetMetrics(sources, { perRig: true, nowMs: NOW_MS });
    const port = await serve(sources, { perRig: true, now: () => NOW_MS });

    // First scrape: headers arrive once the page is rendered and handed to the response; then stall.
    const slow = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: '/metrics', agent: false }, (res) => {
        res.pause();
        resolve(res);
      });
      req.on('error', reject);
      req.end();
    });
    // Same-length labels with other bytes: any reuse of the first page's buffer would show.
    for (let i = 0; i < 160; i++) fleet.upsertRig('s1', 'h1', `r${i}`, { model: model('b') }, NOW_MS);
    const second = await get(port);
    expect(second.body.toString('utf8')).toBe(renderFleetMetrics(sources, { perRig: true, nowMs: NOW_MS }));

    const chunks: Buffer[] = [];
    slow.on('data', (c: Buffer) => chunks.push(c));
    slow.resume();
    await once(slow, 'end');
    const first = Buffer.concat(chunks);
    expect(first.length).toBe(Buffer.byteLength(before));
    expect(first.toString('utf8') === before).toBe(true);
  });

  it('turns a render failure into a 500 and reports it', async () => {
    const errors: unknown[] = [];
    // A view whose maps throw on access stands in for any bug inside the renderer.
    const broken = new Proxy(smallFleet(), {
      get(target, prop) {
        if (prop === 'hosts' || prop === 'rigs') throw new Error('view exploded');
        return Reflect.get(target, prop);
      },
    });
    const port = await serve({ fleet: broken }, { perRig: true, onError: (e) => errors.push(e) });
    const res = await get(port);
    expect(res.status).toBe(500);
    expect(res.body.toString()).toContain('view exploded');
    expect(errors).toHaveLength(1);
  });
});
