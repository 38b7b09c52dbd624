/**
 * `/metrics` at fleet scale: the page of a filled FleetView (the collector's synthetic fleet: every
 * state, probes, incidents) for N rigs with per-rig series on and off, rendered the way the handler
 * does (`writeMetrics` into a kept buffer and label cache: `renderMs`, after one cold scrape whose
 * time is `renderColdMs`), as a string by `renderMetrics` (`renderStringMs`, from scratch each time),
 * then through `createMetricsHandler` on a real node:http server on 127.0.0.1 (plain and gzip, after
 * one cold scrape: `httpColdMs`). While a render runs, a chain of `setImmediate` callbacks stands
 * for the rest of the collector (acks, the live view) and measures the longest wait between two of
 * its turns: `stallMs`, `stallColdMs`.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ExpositionWriter } from '../../../collector/src/metrics/exposition.js';
import { createMetricsHandler } from '../../../collector/src/metrics/handler.js';
import { LabelCache } from '../../../collector/src/metrics/labels.js';
import { renderMetrics, writeMetrics } from '../../../collector/src/metrics/render.js';
import { buildSyntheticFleet, syntheticSources } from '../../../collector/src/metrics/synthetic-fleet.js';
import { median } from '../proc.js';

export interface ScrapeRow {
  rigs: number;
  perRig: boolean;
  /** Median scrape render as the handler does it (kept buffer and label cache, after a cold scrape). */
  renderMs: number;
  /** The first render of that buffer and cache (labels encoded, buffer grown). */
  renderColdMs: number;
  /** Longest the event loop waited for a turn during the timed renders (max over them). */
  stallMs: number;
  /** The same during the cold render. */
  stallColdMs: number;
  /** Median of `renderMetrics()`, which renders from scratch and returns a string. */
  renderStringMs: number;
  bytes: number;
  series: number;
  httpMs: number;
  httpGzipMs: number;
  gzipBytes: number;
  /** The handler's first (plain) scrape, before the timed ones. */
  httpColdMs: number;
}

async function timedGet(port: number, gzip: boolean): Promise<{ ms: number; bytes: number }> {
  const t0 = performance.now();
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    const req = http.get(
      { host: '127.0.0.1', port, path: '/metrics', headers: gzip ? { 'accept-encoding': 'gzip' } : {} },
      resolve,
    );
    req.on('error', reject);
  });
  let bytes = 0;
  for await (const chunk of res) bytes += (chunk as Buffer).length;
  if (res.statusCode !== 200) throw new Error(`/metrics answered ${res.statusCode}`);
  return { ms: performance.now() - t0, bytes };
}

/**
 * Runs `fn` while a chain of `setImmediate` callbacks takes every turn of the event loop it is
 * given, and returns the longest gap between two of them: how long other work waited at worst.
 */
async function withStallProbe(fn: () => Promise<number>): Promise<{ ms: number; stallMs: number }> {
  let last = performance.now();
  let stallMs = 0;
  let running = true;
  const turn = () => {
    const now = performance.now();
    stallMs = Math.max(stallMs, now - last);
    last = now;
    if (running) setImmediate(turn);
  };
  setImmediate(turn);
  const ms = await fn();
  running = false;
  stallMs = Math.max(stallMs, performance.now() - last);
  return { ms, stallMs };
}

export async function benchScrape(rigCounts: number[], runs: number): Promise<ScrapeRow[]> {
  const rows: ScrapeRow[] = [];
  for (const rigs of rigCounts) {
    const nowMs = Date.now();
    // 5 sites of 100-rig hosts: the shape of a large farm.
    const sites = Math.min(5, Math.max(1, Math.floor(rigs / 100)));
    const rigsPerHost = Math.min(100, rigs);
    const hostsPerSite = Math.max(1, Math.round(rigs / sites / rigsPerHost));
    const fleet = buildSyntheticFleet({ nowMs, sites, hostsPerSite, rigsPerHost });
    const sources = syntheticSources(fleet, nowMs);
    const realRigs = sites * hostsPerSite * rigsPerHost;
    for (const perRig of [true, false]) {
      const out = new ExpositionWriter();
      const labels = new LabelCache();
      const render = async () => {
        const t0 = performance.now();
        out.reset();
        await writeMetrics(out, sources, { perRig, nowMs }, labels);
        return performance.now() - t0;
      };
      const cold = await withStallProbe(render);
      const times: number[] = [];
      let stallMs = 0;
      for (let i = 0; i < runs; i++) {
        const warm = await withStallProbe(render);
        times.push(warm.ms);
        stallMs = Math.max(stallMs, warm.stallMs);
      }
      const stringTimes: number[] = [];
      for (let i = 0; i < runs; i++) {
        const t0 = performance.now();
        await renderMetrics(sources, { perRig, nowMs });
        stringTimes.push(performance.now() - t0);
      }
      const page = out.toString();
      const series = page.split('\n').filter((l) => l !== '' && !l.startsWith('#')).length;
      const handler = createMetricsHandler(sources, { perRig, now: () => nowMs });
      const server = http.createServer((req, res) => handler(req, res));
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      const port = (server.address() as AddressInfo).port;
      const plain: number[] = [];
      const gz: number[] = [];
      let gzipBytes = 0;
      let httpColdMs = Number.NaN;
      try {
        httpColdMs = (await timedGet(port, false)).ms;
        for (let i = 0; i < runs; i++) {
          plain.push((await timedGet(port, false)).ms);
          const g = await timedGet(port, true);
          gz.push(g.ms);
          gzipBytes = g.bytes;
        }
      } finally {
        await new Promise<void>((r) => server.close(() => r()));
      }
      rows.push({
        rigs: realRigs,
        perRig,
        renderMs: median(times),
        renderColdMs: cold.ms,
        stallMs,
        stallColdMs: cold.stallMs,
        renderStringMs: median(stringTimes),
        bytes: out.length,
        series,
        httpMs: median(plain),
        httpGzipMs: median(gz),
        gzipBytes,
        httpColdMs,
      });
    }
  }
  return rows;
}
