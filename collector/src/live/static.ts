/**
 * Serves the live-view page bundle (collector/web/dist: index.html, app.js, app.css) from a fixed
 * list of files read once at start, so no request path ever reaches the filesystem: directory
 * traversal is impossible by construction, not by sanitising.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The bundle written by collector/web/build.mjs; same relative place from src/live and dist/live. */
export const DEFAULT_WEB_DIR = fileURLToPath(new URL('../../web/dist/', import.meta.url));

const CONTENT_TYPES: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
};

export interface StaticOptions {
  /** Folder holding the built bundle. */
  dir?: string;
  /** URL prefix the page is mounted under (`/` or `/ui/`); must end with `/`. */
  prefix?: string;
}

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

/** Returns true when it answered the request, false when the path is not one of the page's files. */
export type StaticHandler = (req: IncomingMessage, res: ServerResponse) => boolean;

/**
 * Builds the handler. Throws at start-up (not per request) when the bundle is missing, with the
 * command that builds it. The HTML is `no-cache` (always revalidated, so a deploy shows at once);
 * app.js/app.css are revalidated by ETag too, since their names carry no content hash.
 */
export function createStaticHandler(options: StaticOptions = {}): StaticHandler {
  const dir = options.dir ?? DEFAULT_WEB_DIR;
  const prefix = options.prefix ?? '/';
  const assets = new Map<string, Asset>();
  for (const [name, type] of Object.entries(CONTENT_TYPES)) {
    let body: Buffer;
    try {
      body = readFileSync(join(dir, name));
    } catch (err) {
      throw new Error(
        `Live view page is not built: cannot read ${join(dir, name)} (${(err as Error).message}); run "npm run build"`,
      );
    }
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
    assets.set(name, { body, type, etag });
  }

  return (req, res) => {
    const pathname = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (!pathname.startsWith(prefix)) return false;
    const rest = pathname.slice(prefix.length);
    const asset = assets.get(rest === '' ? 'index.html' : rest);
    if (!asset) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('Method not allowed\n');
      return true;
    }
    const headers = {
      'Content-Type': asset.type,
      ETag: asset.etag,
      'Cache-Control': 'no-cache',
      'X-Content-Type-Options': 'nosniff',
      // The page loads only its own files and talks only to its own origin's WebSocket.
      'Content-Security-Policy':
        "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'",
      'Referrer-Policy': 'no-referrer',
    };
    if (req.headers['if-none-match'] === asset.etag) {
      res.writeHead(304, headers);
      res.end();
      return true;
    }
    res.writeHead(200, { ...headers, 'Content-Length': asset.body.length });
    res.end(req.method === 'HEAD' ? undefined : asset.body);
    return true;
  };
}
