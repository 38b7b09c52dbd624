/**
 * A Prometheus-like scraper for the benchmarks: `GET /metrics` with gzip every `everyMs`, as the
 * compose file's Prometheus does (15 s), so that the collector's cost of being scraped is in the
 * figures beside its work for the fleet, as it is on a farm.
 *
 * Each scrape also reads prom-client's event-loop delay gauges, which cover the time since the
 * previous scrape (prom-client resets its histogram on every collect): how long the collector's
 * main thread stood still at worst, whatever held it (a scrape, a save, a checkpoint).
 *
 * The page is inflated on the thread pool and searched as bytes from its end, where prom-client's
 * part is: the fleet suite's live-view clients share this process, and inflating and decoding a
 * 50,000-rig page (83 MB) here held their frames for up to ~1 s, which read as state-change latency.
 */
import http from 'node:http';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { percentile } from './proc.js';

const inflate = promisify(gunzip);

export interface ScrapeStats {
  scrapes: number;
  everyMs: number;
  /** Response time of a scrape, from the request to the last byte. */
  p50Ms: number;
  maxMs: number;
  /** Compressed page size, median. */
  gzipBytes: number;
  /** The highest `nodejs_eventloop_lag_p99_seconds` of the intervals, in ms. */
  loopDelayP99Ms: number;
  /** The highest `nodejs_eventloop_lag_max_seconds` of the intervals, in ms. */
  loopDelayMaxMs: number;
}

interface Scrape {
  ms: number;
  gzipBytes: number;
  p99Ms: number;
  maxMs: number;
}

/** One scrape: response time, compressed size and the event-loop delay gauges since the previous one. */
export function scrapeOnce(port: number, timeoutMs = 30_000): Promise<Scrape> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.get(
      { host: '127.0.0.1', port, path: '/metrics', headers: { 'accept-encoding': 'gzip' }, timeout: timeoutMs },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const ms = performance.now() - t0;
          if (res.statusCode !== 200) {
            reject(new Error(`/metrics answered ${res.statusCode}`));
            return;
          }
          const body = Buffer.concat(chunks);
          (res.headers['content-encoding'] === 'gzip' ? inflate(body) : Promise.resolve(body))
            .then((page) =>
              resolve({
                ms,
                gzipBytes: body.byteLength,
                p99Ms: gauge(page, 'nodejs_eventloop_lag_p99_seconds') * 1000,
                maxMs: gauge(page, 'nodejs_eventloop_lag_max_seconds') * 1000,
              }),
            )
            .catch(reject);
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`/metrics did not answer within ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

/** The value of an unlabelled gauge of the page, looked for from the end. */
function gauge(page: Buffer, name: string): number {
  const at = page.lastIndexOf(`\n${name} `);
  if (at < 0) throw new Error(`/metrics has no ${name}`);
  const end = page.indexOf(10, at + 1);
  const value = Number.parseFloat(page.toString('latin1', at + name.length + 2, end < 0 ? page.length : end));
  if (!Number.isFinite(value)) throw new Error(`/metrics: ${name} is not a number`);
  return value;
}

/**
 * Scrapes every `everyMs` until `stop()`, which waits for a scrape in flight and returns the
 * figures. Call `scrapeOnce` first: the first interval a scraper sees starts at the previous scrape.
 */
export function startScraper(port: number, everyMs: number): { stop(): Promise<ScrapeStats> } {
  const scrapes: Scrape[] = [];
  let stopped = false;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  let timer: NodeJS.Timeout | undefined;
  const loop = (async () => {
    while (!stopped) {
      await new Promise<void>((resolve) => {
        wake = resolve;
        timer = setTimeout(resolve, everyMs);
      });
      if (stopped) break;
      try {
        scrapes.push(await scrapeOnce(port));
      } catch (err) {
        failure = err as Error;
        break;
      }
    }
  })();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      wake?.();
      await loop;
      if (failure) throw failure;
      const max = (xs: number[]) => (xs.length > 0 ? Math.max(...xs) : Number.NaN);
      return {
        scrapes: scrapes.length,
        everyMs,
        p50Ms: percentile(
          scrapes.map((s) => s.ms),
          50,
        ),
        maxMs: max(scrapes.map((s) => s.ms)),
        gzipBytes: percentile(
          scrapes.map((s) => s.gzipBytes),
          50,
        ),
        loopDelayP99Ms: max(scrapes.map((s) => s.p99Ms)),
        loopDelayMaxMs: max(scrapes.map((s) => s.maxMs)),
      };
    },
  };
}
