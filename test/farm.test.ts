/**
 * The shortest end-to-end path, with nothing mocked but the rigs: simulated rigs (real cgminer TCP
 * and AxeOS HTTP) → agents (real spool, real MQTT over TCP) → embedded broker → collector ingest →
 * SQLite → ack back to the agents; then the diagnosis on a real uplink cut and a real hashboard
 * death, and the live page in Chromium turning the cut site's tile to the connectivity-loss state.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Farm, startFarm } from '../demo/src/farm.js';
import { ensureWebBundle, launchChromium, TEST_OUTPUT } from './helpers/browser.js';

const INTERVAL_MS = 1000;
let farm: Farm;
let dir: string;

async function until<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined> | T | undefined,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

async function api<T>(p: string): Promise<T> {
  const res = await fetch(`${farm.baseUrl}${p}`);
  if (!res.ok) throw new Error(`${p}: HTTP ${res.status}`);
  return (await res.json()) as T;
}

type SiteRow = { site: string; state: string | null };
type RigRow = { rig: string; host: string; state: { state: string } | null };

describe('a simulated farm end to end', () => {
  beforeAll(async () => {
    ensureWebBundle();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hashwatch-farm-'));
    farm = await startFarm({
      dataDir: dir,
      httpPort: 0,
      mqttPort: 0,
      sites: 3,
      hostsPerSite: 2,
      rigsPerHost: 4,
      intervalMs: INTERVAL_MS,
      logLevel: 'info',
      // Rigs cut off from work drop to idle power after 2 s: the state that once read as power loss.
      rig: { workDrainMs: 2000 },
    });
  }, 60_000);

  afterAll(async () => {
    await farm?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('stores every report once and acks it back: the agents spools drain', async () => {
    await until('24 rigs reporting', 20_000, async () => {
      const { rigs } = await api<{ rigs: RigRow[] }>('/api/v1/rigs');
      return rigs.length === 24 && rigs.every((r) => r.state?.state === 'ok');
    });
    const db = new Database(path.join(dir, 'hashwatch.db'), { readonly: true, fileMustExist: true });
    try {
      const count = (sql: string) => (db.prepare(sql).get() as { n: number }).n;
      // Three rounds from each of the four agents, committed.
      await until('12 reports stored', 20_000, () =>
        count('SELECT COUNT(*) AS n FROM reports') >= 12 ? true : undefined,
      );
      // Acked reports leave the spool: every spool drains to at most the report in flight, i.e.
      // the collector committed and acked what the agents produced.
      await until('spools drained by acks', 15_000, () =>
        farm.sites.every((s) => s.agents.every((a) => a.spool.depth() <= 1)) ? true : undefined,
      );
      expect(
        count(
          'SELECT COUNT(*) AS n FROM (SELECT host_id, boot_id, seq FROM reports GROUP BY 1, 2, 3 HAVING COUNT(*) > 1)',
        ),
      ).toBe(0);
      expect(
        count('SELECT COUNT(*) AS n FROM (SELECT rig_id, ts FROM samples GROUP BY 1, 2 HAVING COUNT(*) > 1)'),
      ).toBe(0);
      // Every seq of every boot from 0 to the newest is there: nothing lost on the way.
      const gaps = db
        .prepare('SELECT host_id, boot_id, MIN(seq) AS lo, MAX(seq) AS hi, COUNT(*) AS n FROM reports GROUP BY 1, 2')
        .all() as Array<{ lo: number; hi: number; n: number }>;
      expect(gaps.length).toBe(6);
      for (const g of gaps) {
        expect(g.lo).toBe(0);
        expect(g.n).toBe(g.hi + 1);
      }
    } finally {
      db.close();
    }
  });

  it('labels an uplink cut, a pool outage and a dead hashboard each at the right scope, also once rigs idle', async () => {
    const [cut, other, pool] = farm.sites as [Farm['sites'][0], Farm['sites'][0], Farm['sites'][0]];
    cut.sim.uplink.cut('hang');
    pool.sim.uplink.poolOutage('refuse');
    other.sim.rigs[1]?.killBoard(0);
    other.sim.rigs[1]?.killBoard(1);
    const t0 = Date.now();
    const siteState = async (name: string) =>
      (await api<{ sites: SiteRow[] }>('/api/v1/sites')).sites.find((s) => s.site === name)?.state;
    await until(`${cut.name} in connectivity_loss`, 20_000, async () =>
      (await siteState(cut.name)) === 'connectivity_loss' ? true : undefined,
    );
    const detectMs = Date.now() - t0;
    await until(`${pool.name} in pool_outage`, 20_000, async () =>
      (await siteState(pool.name)) === 'pool_outage' ? true : undefined,
    );
    const faulty = other.sim.rigs[1]!.id;
    await until(`${faulty} in hardware_fault`, 20_000, async () => {
      const r = await api<{ rigs: RigRow[] }>(`/api/v1/rigs?site=${other.name}`);
      return r.rigs.find((x) => x.rig === faulty)?.state?.state === 'hardware_fault' ? true : undefined;
    });
    // Past the 2 s work drain, the cut-off rigs idle at a few percent of nameplate: still the
    // pool path, never power_loss (nor hardware_fault).
    await new Promise((r) => setTimeout(r, 6 * INTERVAL_MS));
    for (const [site, cause] of [
      [cut, 'connectivity_loss'],
      [pool, 'pool_outage'],
    ] as const) {
      const { rigs } = await api<{ rigs: RigRow[] }>(`/api/v1/rigs?site=${site.name}`);
      const states = rigs.map((r) => r.state?.state);
      expect(states, site.name).not.toContain('power_loss');
      expect(states, site.name).not.toContain('hardware_fault');
      expect(await siteState(site.name)).toBe(cause);
    }
    const r = await api<{ rigs: RigRow[] }>(`/api/v1/rigs?site=${other.name}`);
    expect(r.rigs.filter((x) => x.state?.state !== 'ok').map((x) => x.rig)).toEqual([faulty]);
    expect(await siteState(other.name)).not.toBe('connectivity_loss');
    // Two report intervals plus hysteresis confirmation and poll time, on a busy 2-core machine.
    expect(detectMs).toBeLessThan(15_000);
  });

  it('shows the cut site in the connectivity-loss state on the live page, and a banner when the collector stops', async () => {
    const browser = await launchChromium();
    try {
      const page = await browser.context.newPage();
      await page.goto(`${farm.baseUrl}/`);
      const cut = farm.sites[0]!.name;
      await page.locator(`.tile[data-site="${cut}"][data-state="connectivity_loss"]`).waitFor({ timeout: 15_000 });
      await page.locator(`.tile[data-site="${farm.sites[1]!.name}"]`).waitFor({ timeout: 5_000 });
      fs.mkdirSync(TEST_OUTPUT, { recursive: true });
      await page.screenshot({ path: path.join(TEST_OUTPUT, 'live-view-farm.png'), fullPage: true });
      await farm.collector.stop();
      await page.locator('#banner').waitFor({ state: 'visible', timeout: 15_000 });
      expect(await page.locator('#banner').textContent()).toMatch(/DISCONNECTED/);
    } finally {
      await browser.close();
    }
  });
});
