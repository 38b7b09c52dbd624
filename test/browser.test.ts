/**
 * The live page in a real browser (Debian's chromium via playwright-core) against a real server
 * with a FleetView. The server comes from `startFleetServer`: swap it for the real collector with a
 * simulated farm and these tests should hold unchanged.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_FLEET,
  ensureWebBundle,
  type FleetServer,
  launchChromium,
  setSiteState,
  startFleetServer,
  TEST_OUTPUT,
} from './helpers/browser.js';

/** The state colours of collector/web/src/app.css, as computed styles report them. */
const COLOUR = { ok: 'rgb(0, 158, 115)', connectivity_loss: 'rgb(0, 114, 178)' };

let browser: { context: BrowserContext; close(): Promise<void> };
let server: FleetServer | undefined;
let page: Page | undefined;

beforeAll(async () => {
  ensureWebBundle(true);
  mkdirSync(TEST_OUTPUT, { recursive: true });
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
});

afterEach(async () => {
  await page?.close();
  page = undefined;
  await server?.stop();
  server = undefined;
});

async function open(viewport = { width: 1280, height: 900 }): Promise<{ s: FleetServer; p: Page }> {
  server = await startFleetServer({ servePage: true, live: { tickMs: 100, summaryIntervalMs: 500 } });
  page = await browser.context.newPage();
  await page.setViewportSize(viewport);
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  await page.goto(server.url);
  await page.locator('body[data-connected="true"]').waitFor({ timeout: 10_000 });
  expect(errors).toEqual([]);
  return { s: server, p: page };
}

const tile = (p: Page, site: string) => p.locator(`.tile[data-site="${site}"]`);
const style = (p: Page, selector: string, prop: string) =>
  p.evaluate(`getComputedStyle(document.querySelector(${JSON.stringify(selector)})).${prop}`) as Promise<string>;

describe('live page in chromium', () => {
  it('shows every site, flips a tile to connectivity loss live, and lists the incident', async () => {
    const { s, p } = await open();
    for (const site of DEFAULT_FLEET.sites) {
      await expect(tile(p, site).getAttribute('data-state')).resolves.toBe('ok');
    }
    expect(await p.locator('.tile[data-site]').count()).toBe(DEFAULT_FLEET.sites.length);
    expect(await p.locator('#banner').isVisible()).toBe(false);
    expect(await style(p, '.tile[data-site="alpha"]', 'backgroundColor')).toBe(COLOUR.ok);
    await expect(tile(p, 'alpha').textContent()).resolves.toMatch(/OK/);
    // The legend names every state in words, not only in colour.
    await expect(p.locator('#legend').textContent()).resolves.toMatch(/Connectivity loss[\s\S]*Power loss/);

    setSiteState(s.view, 'bravo', 'connectivity_loss', Date.now());
    await p.locator('.tile[data-site="bravo"][data-state="connectivity_loss"]').waitFor({ timeout: 5000 });
    expect(await style(p, '.tile[data-site="bravo"]', 'backgroundColor')).toBe(COLOUR.connectivity_loss);
    await expect(tile(p, 'bravo').textContent()).resolves.toMatch(/connectivity loss/i);
    await expect(tile(p, 'bravo').textContent()).resolves.toMatch(/internet 0\/2/);
    await expect(tile(p, 'alpha').getAttribute('data-state')).resolves.toBe('ok');
    const incident = p.locator('#incidents tr.open');
    await incident.first().waitFor({ timeout: 5000 });
    await expect(incident.first().textContent()).resolves.toMatch(/Connectivity loss[\s\S]*site bravo[\s\S]*ongoing/);
    // Give the chart a couple of summary points with the deficit, then keep the picture.
    await p.locator('#chart polygon.fill-connectivity_loss').waitFor({ timeout: 5000 });
    await p.screenshot({ path: join(TEST_OUTPUT, 'live-view.png'), fullPage: true });
  });

  it('drills down from a site tile to its hosts and to a host’s rigs', async () => {
    const { s, p } = await open();
    s.view.upsertRig(
      'alpha',
      'host-1',
      'rig-02',
      { state: 'hardware_fault', evidence: ['board 2 missing'] },
      Date.now(),
    );
    await tile(p, 'alpha').click();
    await p.locator('#detail tr[data-host]').first().waitFor();
    expect(await p.locator('#detail tr[data-host]').count()).toBe(DEFAULT_FLEET.hostsPerSite);
    await p.locator('#detail tr[data-host="host-1"] a').click();
    await p.locator('#detail tr[data-rig]').first().waitFor();
    expect(await p.locator('#detail tr[data-rig]').count()).toBe(DEFAULT_FLEET.rigsPerHost);
    const faulty = p.locator('#detail tr[data-rig="rig-02"]');
    await expect(faulty.getAttribute('data-state')).resolves.toBe('hardware_fault');
    await expect(faulty.textContent()).resolves.toMatch(/Hardware fault[\s\S]*board 2 missing/);
    await expect(p.locator('#crumbs').textContent()).resolves.toMatch(/All sites › alpha › host-1/);
  });

  it('fits a phone screen without horizontal overflow', async () => {
    const { p } = await open({ width: 390, height: 844 });
    await tile(p, 'charlie').waitFor();
    const overflow = await p.evaluate('document.documentElement.scrollWidth - document.documentElement.clientWidth');
    expect(overflow).toBe(0);
    // Tiles are re-rendered on every delta: a handle can be between two renders, so poll.
    let box: Awaited<ReturnType<ReturnType<typeof tile>['boundingBox']>> = null;
    await expect
      .poll(async () => {
        box = await tile(p, 'alpha').boundingBox();
        return box;
      })
      .not.toBeNull();
    expect(box!.x + box!.width).toBeLessThanOrEqual(390);
    await tile(p, 'alpha').click();
    await p.locator('#detail tr[data-host]').first().waitFor();
    expect(await p.evaluate('document.documentElement.scrollWidth - document.documentElement.clientWidth')).toBe(0);
    await p.evaluate('window.scrollTo(0, 0)');
    await p.screenshot({ path: join(TEST_OUTPUT, 'live-view-phone.png'), fullPage: false });
  });

  it('shows the disconnected banner when the server stops, and reconnects when it returns', async () => {
    const { s, p } = await open();
    const port = Number(new URL(s.url).port);
    await s.stop();
    server = undefined;
    await p.locator('body[data-connected="false"]').waitFor({ timeout: 5000 });
    expect(await p.locator('#banner').isVisible()).toBe(true);
    await expect(p.locator('#banner').textContent()).resolves.toMatch(/DISCONNECTED[\s\S]*Last update \d+s ago/);
    expect(await p.locator('main.stale').count()).toBe(1);
    // The tiles keep their last figures (greyed out), they do not vanish or pretend to be live.
    expect(await p.locator('.tile[data-site]').count()).toBe(DEFAULT_FLEET.sites.length);

    server = await startFleetServer({ servePage: true, view: s.view, port, live: { tickMs: 100 } });
    await p.locator('body[data-connected="true"]').waitFor({ timeout: 15_000 });
    expect(await p.locator('#banner').isVisible()).toBe(false);
  });
});
