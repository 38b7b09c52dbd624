/**
 * The live view over real sockets: a real http.Server on 127.0.0.1:0 with LiveServer mounted on a
 * FleetView holding a synthetic fleet, and real `ws` clients.
 */
import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type {
  DeltaFrame,
  ErrorFrame,
  ServerFrame,
  SnapshotFrame,
  SummaryFrame,
} from '../collector/src/live/protocol.js';
import {
  ensureWebBundle,
  type FleetServer,
  type FleetServerOptions,
  hostName,
  rigName,
  setSiteState,
  startFleetServer,
} from './helpers/browser.js';

const servers: FleetServer[] = [];
const sockets: WebSocket[] = [];

afterEach(async () => {
  for (const ws of sockets.splice(0)) ws.terminate();
  for (const s of servers.splice(0)) await s.stop();
});

async function start(options: FleetServerOptions = {}): Promise<FleetServer> {
  const s = await startFleetServer({ ...options, live: { tickMs: 20, ...options.live } });
  servers.push(s);
  return s;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}

/** A ws client that records every frame it receives, parsed. */
class Client {
  readonly frames: ServerFrame[] = [];
  readonly sizes: number[] = [];
  closed: { code: number; reason: string } | undefined;

  constructor(readonly ws: WebSocket) {
    sockets.push(ws);
    ws.on('message', (data) => {
      const text = data.toString();
      this.sizes.push(text.length);
      this.frames.push(JSON.parse(text) as ServerFrame);
    });
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
    });
    ws.on('error', () => {});
  }

  static async open(url: string, options: ConstructorParameters<typeof WebSocket>[2] = {}): Promise<Client> {
    const c = new Client(new WebSocket(url, options));
    await new Promise<void>((resolve, reject) => {
      c.ws.once('open', () => resolve());
      c.ws.once('error', reject);
    });
    return c;
  }

  of<T extends ServerFrame['type']>(type: T): Extract<ServerFrame, { type: T }>[] {
    return this.frames.filter((f) => f.type === type) as Extract<ServerFrame, { type: T }>[];
  }

  async next<T extends ServerFrame['type']>(
    type: T,
    pred: (f: Extract<ServerFrame, { type: T }>) => boolean = () => true,
    timeoutMs = 5000,
  ): Promise<Extract<ServerFrame, { type: T }>> {
    let found: Extract<ServerFrame, { type: T }> | undefined;
    const look = () => {
      found = this.of(type).find(pred);
      return found !== undefined;
    };
    await until(`a ${type} frame`, look, timeoutMs);
    return found!;
  }

  send(data: string | Buffer, binary = false): void {
    this.ws.send(data, { binary });
  }
}

/** Opens a WebSocket expecting a refusal; returns the HTTP status the server answered. */
function refusedStatus(url: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    sockets.push(ws);
    ws.on('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
      ws.terminate();
    });
    ws.on('open', () => reject(new Error('Connection was accepted but should have been refused')));
    ws.on('error', () => {});
  });
}

const rigIds = (f: { rigs: { site: string; host: string; rig: string }[] }) =>
  f.rigs.map((r) => `${r.site}/${r.host}/${r.rig}`);

describe('live view: snapshot and deltas', () => {
  it('sends a snapshot of the fleet with figures on connect', async () => {
    const s = await start();
    const c = await Client.open(s.wsUrl);
    const snap = await c.next('snapshot');
    expect(snap.v).toBe(1);
    expect(snap.reason).toBe('connect');
    expect(Math.abs(snap.nowMs - Date.now())).toBeLessThan(60_000);
    expect(snap.sites.map((x) => x.site)).toEqual(['alpha', 'bravo', 'charlie']);
    expect(snap.hosts).toHaveLength(6);
    expect(snap.rigs).toHaveLength(18);
    expect(snap.history.length).toBeGreaterThanOrEqual(1);
    const alpha = snap.sites.find((x) => x.site === 'alpha')!;
    expect(alpha.state).toBe('ok');
    expect(alpha.rigsByState.ok).toBe(6);
    expect(alpha.expectedHashrateHs).toBeCloseTo(6 * 110e12);
    expect(alpha.hostsOnline).toBe(2);
    expect(alpha.uplink.map((u) => u.role)).toEqual(['gateway', 'internet', 'pool']);
    expect(alpha.uplink.find((u) => u.role === 'internet')).toMatchObject({
      targetsOk: 2,
      targetsTotal: 2,
      lossRatio: 0,
    });
    const rig = snap.rigs.find((r) => r.site === 'alpha' && r.host === 'host-0' && r.rig === 'rig-00')!;
    expect(rig).toMatchObject({
      state: 'ok',
      hashrateHs: 110e12 * 0.98,
      expectedHashrateHs: 110e12,
      powerW: 3250,
      maxTempC: 72,
      boardsOk: 3,
      boardsTotal: 3,
      poolConnected: true,
      reachable: true,
    });
  });

  it('coalesces many changes of one rig into one delta per tick, with the site roll-up', async () => {
    const s = await start({ live: { tickMs: 200 } });
    const c = await Client.open(s.wsUrl);
    await c.next('snapshot');
    const now = Date.now();
    for (let i = 0; i < 10; i++) {
      s.view.upsertRig('alpha', 'host-0', 'rig-01', { evidence: [`change ${i}`], state: 'hardware_fault' }, now);
    }
    const delta = await c.next('delta', (d) => d.rigs.length > 0);
    expect(rigIds(delta)).toEqual(['alpha/host-0/rig-01']);
    expect(delta.rigs[0]).toMatchObject({ state: 'hardware_fault', evidence: ['change 9'] });
    expect(delta.sites.map((x) => x.site)).toEqual(['alpha']);
    expect(delta.sites[0]?.rigsByState.hardware_fault).toBe(1);
    await sleep(400);
    expect(c.of('delta').filter((d) => d.rigs.length > 0)).toHaveLength(1);
  });

  it('keeps site roll-ups true across a time nobody watched: a change back still reaches a new client', async () => {
    const s = await start({ live: { siteRollupMs: 20 } });
    const siteState = (f: DeltaFrame | SnapshotFrame) => f.sites.find((x) => x.site === 'alpha')?.state;
    const first = await Client.open(s.wsUrl);
    await first.next('snapshot');
    setSiteState(s.view, 'alpha', 'connectivity_loss', Date.now());
    await first.next('delta', (d) => siteState(d) === 'connectivity_loss');
    first.ws.close();
    await until('the first client to leave', () => s.live.stats().clients === 0);
    // Unwatched: no deltas are kept, but the roll-up still follows the fleet.
    setSiteState(s.view, 'alpha', 'ok', Date.now());
    await sleep(100);
    const second = await Client.open(s.wsUrl);
    expect(siteState(await second.next('snapshot'))).toBe('ok');
    // The same roll-up as the last one sent before: it must not be taken as unchanged.
    setSiteState(s.view, 'alpha', 'connectivity_loss', Date.now());
    const delta = await second.next('delta', (d) => siteState(d) !== undefined);
    expect(siteState(delta)).toBe('connectivity_loss');
    const rigs = delta.rigs.filter((r) => r.site === 'alpha');
    expect(rigs.length).toBeGreaterThan(0);
    expect(rigs.every((r) => r.state === 'connectivity_loss')).toBe(true);
  });

  it('streams incidents, and summaries that new clients get as history', async () => {
    const s = await start({ live: { summaryIntervalMs: 50, historyMs: 200 } });
    const c = await Client.open(s.wsUrl);
    await c.next('snapshot');
    setSiteState(s.view, 'bravo', 'connectivity_loss', Date.now());
    const inc = await c.next('delta', (d) => d.incidents.length > 0);
    expect(inc.incidents[0]).toMatchObject({ site: 'bravo', cause: 'connectivity_loss', endMs: null, rigsAffected: 6 });
    const summary: SummaryFrame = await c.next('summary', (f) =>
      f.point.sites.some((x) => x.site === 'bravo' && (x.deficitHsByCause.connectivity_loss ?? 0) > 0),
    );
    const bravo = summary.point.sites.find((x) => x.site === 'bravo')!;
    expect(bravo.deficitHsByCause.connectivity_loss).toBeCloseTo(6 * 110e12);
    expect(bravo.hashrateHs).toBe(0);
    await sleep(400);
    const late = await Client.open(s.wsUrl);
    const snap = await late.next('snapshot');
    // historyMs / summaryIntervalMs = 4 points kept, never more.
    expect(snap.history).toHaveLength(4);
    expect(snap.incidents.map((i) => i.site)).toEqual(['bravo']);
    expect(snap.sites.find((x) => x.site === 'bravo')?.state).toBe('connectivity_loss');
  });
});

describe('live view: filters', () => {
  it('a client subscribed to a site hears nothing about other sites', async () => {
    const s = await start();
    const a = await Client.open(s.wsUrl);
    await a.next('snapshot');
    a.send(JSON.stringify({ type: 'subscribe', site: 'alpha' }));
    const snap = await a.next('snapshot', (f) => f.reason === 'subscribe');
    expect(snap.filter).toEqual({ site: 'alpha' });
    expect(new Set(snap.rigs.map((r) => r.site))).toEqual(new Set(['alpha']));
    expect(snap.sites.map((x) => x.site)).toEqual(['alpha']);
    expect(snap.history.every((p) => p.sites.every((x) => x.site === 'alpha'))).toBe(true);
    const before = a.frames.length;
    const now = Date.now();
    setSiteState(s.view, 'bravo', 'power_loss', now);
    s.view.upsertRig('charlie', 'host-1', 'rig-02', { state: 'degraded' }, now);
    // A marker change in alpha, sent after the others: once it arrives, anything about B would have too.
    await sleep(60);
    s.view.upsertRig('alpha', 'host-1', 'rig-02', { state: 'degraded' }, now);
    await a.next('delta', (d) => d.rigs.some((r) => r.site === 'alpha'));
    const later = a.frames.slice(before) as DeltaFrame[];
    const sitesSeen = new Set(
      later.flatMap((d) => [...d.rigs, ...d.hosts, ...d.sites, ...d.incidents].map((x) => x.site)),
    );
    expect(sitesSeen).toEqual(new Set(['alpha']));
  });

  it('a host filter narrows to the host, and an empty subscribe widens again', async () => {
    const s = await start();
    const c = await Client.open(s.wsUrl);
    await c.next('snapshot');
    c.send(JSON.stringify({ type: 'subscribe', site: 'bravo', host: 'host-1' }));
    const snap = await c.next('snapshot', (f) => f.reason === 'subscribe');
    expect(new Set(rigIds(snap))).toEqual(new Set([0, 1, 2].map((i) => `bravo/host-1/${rigName(i)}`)));
    expect(snap.hosts.map((x) => `${x.site}/${x.host}`)).toEqual(['bravo/host-1']);
    const before = c.frames.length;
    const now = Date.now();
    s.view.upsertRig('bravo', hostName(0), rigName(0), { state: 'unreachable' }, now);
    s.view.upsertRig('bravo', hostName(1), rigName(0), { state: 'unreachable' }, now);
    const d = await c.next('delta', (f) => f.rigs.length > 0);
    expect(rigIds(d)).toEqual(['bravo/host-1/rig-00']);
    expect(
      (c.frames.slice(before) as DeltaFrame[]).flatMap((f) => f.rigs ?? []).every((r) => r.host === 'host-1'),
    ).toBe(true);

    c.send('{}');
    const wide = await c.next('snapshot', (f) => f.reason === 'subscribe' && f.filter.site === undefined);
    expect(wide.rigs).toHaveLength(18);
    c.send(JSON.stringify({ type: 'subscribe', site: 'alpha' }));
    c.send(JSON.stringify({ type: 'subscribe' }));
    await until('two more snapshots', () => c.of('snapshot').length >= 5);
    expect(c.of('snapshot').at(-1)?.filter).toEqual({});
  });
});

describe('live view: hostile and slow clients', () => {
  it('answers garbage with error frames and closes a client that keeps at it', async () => {
    const s = await start({ live: { maxStrikes: 6, maxClientMessageBytes: 1024 } });
    const c = await Client.open(s.wsUrl);
    await c.next('snapshot');
    c.send(Buffer.from([1, 2, 3]), true);
    c.send('{not json');
    c.send('[1,2]');
    c.send(JSON.stringify({ type: 'teleport' }));
    c.send(JSON.stringify({ type: 'subscribe', site: '../../etc' }));
    await until('five error frames', () => c.of('error').length === 5);
    expect(c.of('error').map((e: ErrorFrame) => e.reason)).toEqual([
      'binary_frame',
      'malformed_json',
      'not_object',
      'unknown_type',
      'bad_filter',
    ]);
    expect(c.closed).toBeUndefined();
    c.send(JSON.stringify({ type: 'subscribe', site: 'x'.repeat(2000) }));
    await until('the close', () => c.closed !== undefined);
    expect(c.of('error').at(-1)?.reason).toBe('too_large');
    expect(c.closed?.code).toBe(1008);
    expect(s.live.stats().policyClosesTotal).toBe(1);
    // The server is unharmed: a new client is served.
    const d = await Client.open(s.wsUrl);
    expect((await d.next('snapshot')).rigs).toHaveLength(18);
  });

  it('closes a client whose frame is over the hard payload limit', async () => {
    const s = await start({ live: { maxClientMessageBytes: 1024 } });
    const c = await Client.open(s.wsUrl);
    await c.next('snapshot');
    c.send('x'.repeat(1024 * 1024));
    await until('the close', () => c.closed !== undefined);
    expect(c.closed?.code).toBe(1009);
  });

  it('bounds a slow client: drops its deltas, then resyncs it with a fresh snapshot', async () => {
    const maxBufferedBytes = 64 * 1024;
    const s = await start({
      live: { tickMs: 10, maxBufferedBytes },
      fleet: { sites: ['alpha', 'bravo'], hostsPerSite: 4, rigsPerHost: 25 },
    });
    const slow = await Client.open(s.wsUrl);
    const fast = await Client.open(s.wsUrl);
    await slow.next('snapshot');
    await fast.next('snapshot');
    const snapshotBytes = slow.sizes[0]!;
    const budget = maxBufferedBytes + snapshotBytes;
    // Stop reading: the kernel buffers fill, then the server's.
    (slow.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket.pause();
    const padding = 'x'.repeat(200);
    let round = 0;
    const flood = () => {
      const now = Date.now();
      for (const r of s.view.rigs.values()) {
        s.view.upsertRig(r.site, r.host, r.rig, { evidence: [`round ${round} ${padding}`] }, now);
      }
      round++;
    };
    // Ids are handed out in connection order: the slow client connected first.
    const [slowId, fastId] = s.live.clientInfo().map((x) => x.id);
    const slowInfo = () => s.live.clientInfo().find((x) => x.id === slowId)!;
    let maxSeen = 0;
    const deadline = Date.now() + 20_000;
    while (!slowInfo().resync) {
      if (Date.now() > deadline) throw new Error('The slow client was never marked for a resync');
      flood();
      await sleep(12);
      maxSeen = Math.max(maxSeen, slowInfo().bufferedBytes);
    }
    const bufferedAtResync = slowInfo().bufferedBytes;
    expect(bufferedAtResync).toBeGreaterThan(0);
    // Keep flooding: nothing more is queued for the slow client, so its buffer does not grow.
    for (let i = 0; i < 60; i++) {
      flood();
      await sleep(12);
      maxSeen = Math.max(maxSeen, slowInfo().bufferedBytes);
    }
    expect(slowInfo().resync).toBe(true);
    expect(slowInfo().bufferedBytes).toBeLessThanOrEqual(bufferedAtResync);
    expect(maxSeen).toBeLessThanOrEqual(budget);
    expect(s.live.stats().resyncsTotal).toBeGreaterThanOrEqual(1);
    // The fast client (which shares this event loop, so it may itself lag and resync) ends up current.
    const lastRound = `round ${round - 1} `;
    expect(fastId).toBeDefined();
    await until('the fast client to see the last round', () =>
      fast.frames.some(
        (f) =>
          (f.type === 'delta' || f.type === 'snapshot') && f.rigs.some((r) => r.evidence[0]?.startsWith(lastRound)),
      ),
    );

    (slow.ws as unknown as { _socket: { resume(): void } })._socket.resume();
    const resync: SnapshotFrame = await slow.next('snapshot', (f) => f.reason === 'resync', 15_000);
    expect(resync.rigs).toHaveLength(200);
    expect(resync.rigs.every((r) => r.evidence[0]?.startsWith(`round ${round - 1} `))).toBe(true);
    // After the resync it is a normal client again.
    s.view.upsertRig('alpha', 'host-0', 'rig-00', { evidence: ['after resync'] }, Date.now());
    await slow.next('delta', (d) => d.rigs.some((r) => r.evidence[0] === 'after resync'));
  });

  it('closes a client that stops answering pings, and keeps one that answers', async () => {
    const s = await start({ live: { heartbeatIntervalMs: 80 } });
    const dead = await Client.open(s.wsUrl, { autoPong: false });
    const alive = await Client.open(s.wsUrl);
    await until('the dead client to be dropped', () => dead.closed !== undefined, 3000);
    expect(s.live.stats().heartbeatTimeoutsTotal).toBe(1);
    await sleep(300);
    expect(alive.closed).toBeUndefined();
    expect(s.live.stats().clients).toBe(1);
  });
});

describe('live view: who may connect', () => {
  it('refuses a missing or wrong token with 401 and accepts header or query token', async () => {
    const s = await start({ live: { token: 's3cret-token' } });
    expect(await refusedStatus(s.wsUrl)).toBe(401);
    expect(await refusedStatus(s.wsUrl, { Authorization: 'Bearer wrong' })).toBe(401);
    expect(await refusedStatus(`${s.wsUrl}?token=s3cret-tokeX`)).toBe(401);
    const byHeader = await Client.open(s.wsUrl, { headers: { Authorization: 'Bearer s3cret-token' } });
    await byHeader.next('snapshot');
    const byQuery = await Client.open(`${s.wsUrl}?token=s3cret-token`);
    await byQuery.next('snapshot');
    expect(s.live.stats().refusedTotal).toBe(3);
  });

  it('refuses foreign origins with 403, allows the same host and listed origins', async () => {
    const s = await start();
    const self = new URL(s.url).origin;
    expect(await refusedStatus(s.wsUrl, { Origin: 'http://evil.example' })).toBe(403);
    await (await Client.open(s.wsUrl, { origin: self })).next('snapshot');
    const listed = await start({ live: { allowedOrigins: ['https://ops.example.com'] } });
    expect(await refusedStatus(listed.wsUrl, { Origin: new URL(listed.url).origin })).toBe(403);
    await (await Client.open(listed.wsUrl, { origin: 'https://ops.example.com' })).next('snapshot');
  });

  it('refuses past max clients with 503, and other paths with 404', async () => {
    const s = await start({ live: { maxClients: 1 } });
    await (await Client.open(s.wsUrl)).next('snapshot');
    expect(await refusedStatus(s.wsUrl)).toBe(503);
    expect(await refusedStatus(s.wsUrl.replace('/live', '/other'))).toBe(404);
  });

  it('closes clients with 1001 on stop and refuses upgrades afterwards', async () => {
    const s = await start();
    const c = await Client.open(s.wsUrl);
    await c.next('snapshot');
    s.live.stop();
    await until('the close', () => c.closed !== undefined);
    expect(c.closed?.code).toBe(1001);
    expect(await refusedStatus(s.wsUrl)).toBe(503);
  });
});

/** GETs a raw path (not normalised by URL parsing, so `..` reaches the server as sent). */
function get(
  base: string,
  path: string,
  options: { method?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const init = { host: hostname, port, path, method: options.method ?? 'GET', headers: options.headers };
    const req = request(init, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('live view: static page', () => {
  it('serves the bundle with content types and cache headers, and nothing else', async () => {
    ensureWebBundle();
    const s = await start({ servePage: true });
    const index = await get(s.url, '/');
    expect(index.status).toBe(200);
    expect(index.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(index.headers['cache-control']).toBe('no-cache');
    expect(index.body).toContain('<script type="module" src="app.js">');
    expect((await get(s.url, '/app.js')).headers['content-type']).toBe('text/javascript; charset=utf-8');
    const css = await get(s.url, '/app.css');
    expect(css.headers['content-type']).toBe('text/css; charset=utf-8');
    const etag = css.headers.etag as string;
    expect(etag).toMatch(/^".+"$/);
    expect((await get(s.url, '/app.css', { headers: { 'If-None-Match': etag } })).status).toBe(304);
    expect((await get(s.url, '/index.html', { method: 'POST' })).status).toBe(405);
    const hostile = [
      '/../package.json',
      '/%2e%2e/%2e%2e/package.json',
      '/..%2f..%2fpackage.json',
      '/build.mjs',
      '/src/app.js',
    ];
    for (const path of hostile) {
      expect((await get(s.url, path)).status, path).toBe(404);
    }
  });
});
