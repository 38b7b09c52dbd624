/**
 * Test fixtures for the live view: a synthetic fleet in a real FleetView, "a server with a view"
 * (real node:http server on 127.0.0.1:0 serving the page bundle and the /live WebSocket), and
 * Debian's chromium driven by playwright-core. `startFleetServer` is the seam: a later test can
 * swap it for the real collector fed by a simulated farm, as long as it returns `{ url, view, stop }`.
 */
import { execFileSync } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ProbeResult, RigSample } from '@hashwatch/protocol';
import { type BrowserContext, chromium } from 'playwright-core';
import { type FleetState, FleetView } from '../../collector/src/fleet/view.js';
import { type LiveOptions, LiveServer } from '../../collector/src/live/server.js';
import { createStaticHandler } from '../../collector/src/live/static.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const WEB_DIST = join(REPO, 'collector/web/dist');
export const TEST_OUTPUT = join(REPO, 'test-output');

/** Where chromium is: $HASHWATCH_CHROMIUM, else the Debian package's paths. Throws when missing. */
export function findChromium(): string {
  const candidates = [process.env.HASHWATCH_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'];
  for (const path of candidates) {
    if (!path) continue;
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {}
  }
  throw new Error(
    'Chromium not found (looked at $HASHWATCH_CHROMIUM, /usr/bin/chromium, /usr/bin/chromium-browser): ' +
      'install it with "apt-get install chromium" or set HASHWATCH_CHROMIUM; browser tests never download a browser',
  );
}

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** A headless chromium with a fresh profile; `close()` also deletes the profile. */
export async function launchChromium(): Promise<{ context: BrowserContext; close(): Promise<void> }> {
  const executablePath = findChromium();
  const userDataDir = await mkdtemp(join(tmpdir(), 'hashwatch-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 900 },
    timeout: 30_000,
  });
  return {
    context,
    async close() {
      await context.close().catch(() => {});
      await rm(userDataDir, { recursive: true, force: true });
    },
  };
}

/** Builds the page bundle with collector/web/build.mjs unless `dist/` already has it. */
export function ensureWebBundle(force = false): void {
  if (!force && existsSync(join(WEB_DIST, 'app.js')) && existsSync(join(WEB_DIST, 'index.html'))) return;
  execFileSync(process.execPath, [join(REPO, 'collector/web/build.mjs')], { stdio: 'inherit', timeout: 60_000 });
}

export interface FleetShape {
  sites: string[];
  hostsPerSite: number;
  rigsPerHost: number;
}

export const DEFAULT_FLEET: FleetShape = { sites: ['alpha', 'bravo', 'charlie'], hostsPerSite: 2, rigsPerHost: 3 };
const NOMINAL_HS = 110e12;

export const hostName = (i: number) => `host-${i}`;
export const rigName = (i: number) => `rig-${String(i).padStart(2, '0')}`;

function probes(nowMs: number, internetOk: boolean): ProbeResult[] {
  return [
    { target: 'gw', kind: 'gateway', role: 'gateway', ok: true, attempts: 3, loss_ratio: 0, latency_ms: 1, ts: nowMs },
    {
      target: 'cloudflare',
      kind: 'tcp',
      role: 'internet',
      ok: internetOk,
      attempts: 3,
      loss_ratio: internetOk ? 0 : 1,
      ...(internetOk ? { latency_ms: 24 } : { error_class: 'timeout' as const }),
      ts: nowMs,
    },
    {
      target: 'pool-main',
      kind: 'stratum',
      role: 'pool',
      ok: internetOk,
      attempts: 3,
      loss_ratio: internetOk ? 0 : 1,
      ...(internetOk ? { latency_ms: 41 } : { error_class: 'timeout' as const }),
      ts: nowMs,
    },
  ];
}

function sample(rig: string, nowMs: number, hashing: boolean): RigSample {
  return {
    rig,
    ts: nowMs,
    reachable: true,
    hashrate_hs: hashing ? NOMINAL_HS * 0.98 : 0,
    power_w: 3250,
    temps: [{ sensor: 'board0.chip', temp_c: 71 }],
    boards: [
      { board: '0', ok: true, temp_c: 70 },
      { board: '1', ok: true, temp_c: 72 },
      { board: '2', ok: true, temp_c: 69 },
    ],
    pools: [{ url: 'stratum+tcp://pool.example.org:3333', status: hashing ? 'alive' : 'dead', active: true }],
  };
}

/** Fills `view` with a healthy fleet: every host online with passing probes, every rig `ok`. */
export function fillSyntheticFleet(view: FleetView, nowMs: number, shape: FleetShape = DEFAULT_FLEET): void {
  for (const site of shape.sites) {
    for (let h = 0; h < shape.hostsPerSite; h++) {
      const host = hostName(h);
      view.upsertHost(
        site,
        host,
        { online: true, agentVersion: '0.1.0', lastReceivedMs: nowMs, probes: probes(nowMs, true), state: 'ok' },
        nowMs,
      );
      for (let r = 0; r < shape.rigsPerHost; r++) {
        const rig = rigName(r);
        view.upsertRig(
          site,
          host,
          rig,
          {
            model: 'Antminer S19 XP',
            api: 'cgminer',
            nominalHashrateHs: NOMINAL_HS,
            nominalPowerW: 3250,
            expectedHashrateHs: NOMINAL_HS,
            state: 'ok',
            evidence: ['hashrate 98% of expected', 'pool connected'],
          },
          nowMs,
        );
        view.recordSample(site, host, sample(rig, nowMs, true), nowMs);
      }
    }
  }
}

/**
 * Puts every rig of `site` into `state`, with samples and probes that fit it (for
 * `connectivity_loss`: no hashrate, pool dead, internet and pool probes failing), and opens an incident.
 */
export function setSiteState(view: FleetView, site: string, state: FleetState, nowMs: number): void {
  const hashing = state === 'ok';
  let rigs = 0;
  for (const h of [...view.hosts.values()].filter((x) => x.site === site)) {
    view.upsertHost(site, h.host, { probes: probes(nowMs, state !== 'connectivity_loss'), state }, nowMs);
  }
  for (const r of [...view.rigs.values()].filter((x) => x.site === site)) {
    rigs++;
    const evidence = hashing ? ['hashrate 98% of expected'] : ['stratum down on all rigs', 'internet probes failing'];
    view.upsertRig(site, r.host, r.rig, { state, evidence }, nowMs);
    view.recordSample(site, r.host, sample(r.rig, nowMs + 1, hashing), nowMs);
  }
  if (state !== 'ok') {
    view.upsertIncident({
      id: `${site}-${state}-${nowMs}`,
      scope: 'site',
      scopeId: site,
      site,
      cause: state,
      startMs: nowMs,
      rigsAffected: rigs,
      deficitHashes: 0,
      energyJ: 0,
      evidence: ['synthetic incident'],
    });
  }
}

export interface FleetServer {
  /** Base URL of the page (`http://127.0.0.1:port/`). */
  url: string;
  /** URL of the live WebSocket. */
  wsUrl: string;
  view: FleetView;
  live: LiveServer;
  stop(): Promise<void>;
}

export interface FleetServerOptions {
  live?: LiveOptions;
  /** Fleet to fill the view with; `null` leaves the view empty. */
  fleet?: FleetShape | null;
  /** Serve the page bundle too (needs it built). */
  servePage?: boolean;
  /** Reuse a view (to restart a server over the same fleet). */
  view?: FleetView;
  /** Listen on this port (to restart on the same URL); 0 = any free port. */
  port?: number;
}

/** Starts "a server with a view": real HTTP on 127.0.0.1 with the page and /live mounted. */
export async function startFleetServer(options: FleetServerOptions = {}): Promise<FleetServer> {
  const view = options.view ?? new FleetView();
  if (!options.view && options.fleet !== null) fillSyntheticFleet(view, Date.now(), options.fleet ?? DEFAULT_FLEET);
  const live = new LiveServer(view, options.live ?? {});
  const serve = options.servePage ? createStaticHandler({ dir: WEB_DIST }) : undefined;
  const server = createServer((req, res) => {
    if (serve?.(req, res)) return;
    res.writeHead(404, { 'Content-Type': 'text/plain' });
    res.end('Not found\n');
  });
  server.on('upgrade', (req, socket, head) => live.handleUpgrade(req, socket, head));
  live.start();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    wsUrl: `ws://127.0.0.1:${port}${live.path}`,
    view,
    live,
    async stop() {
      live.stop();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
