/**
 * The `/metrics` endpoint as a plain node:http handler; the collector's HTTP server mounts it.
 * Prometheus asks for gzip, and a large fleet's page compresses ~10×, so it is honoured.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { gzip } from 'node:zlib';
import { EXPOSITION_CONTENT_TYPE } from './exposition.js';
import { type MetricsSources, renderMetrics } from './render.js';

export interface MetricsHandlerOptions {
  /** false drops every per-rig series (config `metrics.per_rig`). */
  perRig: boolean;
  /** Collector clock; injectable for tests. */
  now?: () => number;
  /** Called when rendering fails (the scrape gets a 500); wire to the logger. */
  onError?: (err: unknown) => void;
}

/** Returns `(req, res) => void` serving the exposition (GET/HEAD; other methods get 405). */
export function createMetricsHandler(
  sources: MetricsSources,
  options: MetricsHandlerOptions,
): (req: IncomingMessage, res: ServerResponse) => void {
  const now = options.now ?? Date.now;
  return (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' });
      res.end('Method not allowed: use GET\n');
      return;
    }
    const fail = (err: unknown) => {
      options.onError?.(err);
      if (res.headersSent) {
        res.destroy();
        return;
      }
      res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`Rendering metrics failed: ${err instanceof Error ? err.message : String(err)}\n`);
    };
    const send = (text: string) => {
      const headers: Record<string, string> = { 'content-type': EXPOSITION_CONTENT_TYPE, 'cache-control': 'no-store' };
      const wantsGzip = /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
      if (!wantsGzip) {
        res.writeHead(200, { ...headers, 'content-length': String(Buffer.byteLength(text)) });
        res.end(req.method === 'HEAD' ? undefined : text);
        return;
      }
      gzip(text, (err, body) => {
        if (err) return fail(err);
        res.writeHead(200, { ...headers, 'content-encoding': 'gzip', 'content-length': String(body.length) });
        res.end(req.method === 'HEAD' ? undefined : body);
      });
    };
    try {
      const result = renderMetrics(sources, { perRig: options.perRig, nowMs: now() });
      if (typeof result === 'string') send(result);
      else result.then(send, fail);
    } catch (err) {
      fail(err);
    }
  };
}
