/**
 * The collector's one HTTP server (node:http + find-my-way), shared by the JSON API, `/metrics`,
 * the live view's WebSocket upgrade and static files. Handlers return a value (sent as JSON) or
 * throw an HttpError; every error leaves as `{ "error": { status, code, message } }`.
 */

import { timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import FindMyWay, { type HTTPMethod } from 'find-my-way';
import type { Logger } from 'pino';

export interface HttpServerOptions {
  /** Listen address; 127.0.0.1 unless Prometheus or browsers on other machines must reach it. */
  host: string;
  /** 0 = any free port (tests). */
  port: number;
  /** When non-empty, routes registered with `auth: true` require `Authorization: Bearer <token>`. */
  apiToken: string;
  /** Largest request body read; larger bodies get 413. */
  maxBodyBytes: number;
}

export class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export interface RequestContext {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  params: Record<string, string | undefined>;
  query: URLSearchParams;
  /** Reads the body (bounded by maxBodyBytes). */
  body(): Promise<Buffer>;
}

/**
 * A handler returns the JSON body (status 200), or `undefined` when it wrote the response itself
 * (metrics text, static files).
 */
export type RouteHandler = (ctx: RequestContext) => unknown | Promise<unknown>;
export type UpgradeHandler = (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void;

export function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

function sendError(res: http.ServerResponse, status: number, code: string, message: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendJson(res, status, { error: { status, code, message } });
}

export class HttpServer {
  private readonly options: HttpServerOptions;
  private readonly log: Logger;
  private readonly router = FindMyWay({
    ignoreTrailingSlash: true,
    maxParamLength: 200,
    defaultRoute: (_req, res) => sendError(res, 404, 'HW_ERR_NOT_FOUND', 'No such endpoint'),
    onBadUrl: (_path, _req, res) => sendError(res, 400, 'HW_ERR_BAD_URL', 'The URL is not validly percent-encoded'),
  });
  private readonly upgrades = new Map<string, UpgradeHandler>();
  private server: http.Server | undefined;

  constructor(options: HttpServerOptions, log: Logger) {
    this.options = options;
    this.log = log;
  }

  /** Registers a route; `auth: true` puts it behind the bearer token (when one is configured). */
  route(method: HTTPMethod, path: string, handler: RouteHandler, opts: { auth?: boolean } = {}): void {
    this.router.on(method, path, (req, res, params) => {
      void this.run(req, res, params as Record<string, string | undefined>, handler, opts.auth === true);
    });
  }

  /** Hands WebSocket upgrades of exactly `path` to `handler`; other upgrades are refused. */
  onUpgrade(path: string, handler: UpgradeHandler): void {
    this.upgrades.set(path, handler);
  }

  /** The bound port (after start). */
  get port(): number {
    const addr = this.server?.address() as AddressInfo | null | undefined;
    return addr?.port ?? 0;
  }

  async start(): Promise<void> {
    const server = http.createServer((req, res) => {
      this.router.lookup(req, res);
    });
    server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
      const path = (req.url ?? '').split('?')[0] ?? '';
      const handler = this.upgrades.get(path);
      if (!handler) {
        socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\n\r\n');
        return;
      }
      handler(req, socket, head);
    });
    server.headersTimeout = 10_000;
    server.requestTimeout = 30_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port, this.options.host, () => {
        server.off('error', reject);
        resolve();
      });
    }).catch((err: NodeJS.ErrnoException) => {
      throw new Error(
        `HTTP server could not listen on ${this.options.host}:${this.options.port}: ${err.code ?? err.message} (change http.host/http.port)`,
      );
    });
    this.server = server;
    this.log.info({ host: this.options.host, port: this.port }, 'HTTP server listening');
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  private authorized(req: http.IncomingMessage): boolean {
    const token = this.options.apiToken;
    if (token === '') return true;
    const header = req.headers.authorization ?? '';
    const given = Buffer.from(header.startsWith('Bearer ') ? header.slice(7) : '');
    const want = Buffer.from(token);
    return given.length === want.length && timingSafeEqual(given, want);
  }

  private async run(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    params: Record<string, string | undefined>,
    handler: RouteHandler,
    auth: boolean,
  ): Promise<void> {
    try {
      if (auth && !this.authorized(req)) {
        res.setHeader('www-authenticate', 'Bearer');
        throw new HttpError(401, 'HW_ERR_UNAUTHORIZED', 'Missing or wrong bearer token (see http.api_token)');
      }
      const url = new URL(req.url ?? '/', 'http://localhost');
      const ctx: RequestContext = { req, res, params, query: url.searchParams, body: () => this.readBody(req) };
      const result = await handler(ctx);
      if (result !== undefined && !res.writableEnded) sendJson(res, 200, result);
    } catch (err) {
      if (err instanceof HttpError) {
        sendError(res, err.status, err.code, err.message);
        return;
      }
      this.log.error({ err, url: req.url }, 'HTTP handler failed');
      sendError(res, 500, 'HW_ERR_INTERNAL', 'Internal error; see the collector log');
    }
  }

  private readBody(req: http.IncomingMessage): Promise<Buffer> {
    const limit = this.options.maxBodyBytes;
    return new Promise((resolve, reject) => {
      const declared = Number(req.headers['content-length'] ?? 0);
      if (declared > limit) {
        reject(new HttpError(413, 'HW_ERR_BODY_TOO_LARGE', `Request body larger than ${limit} bytes`));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > limit) {
          req.destroy();
          reject(new HttpError(413, 'HW_ERR_BODY_TOO_LARGE', `Request body larger than ${limit} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      req.on('end', () => resolve(Buffer.concat(chunks)));
      req.on('error', reject);
    });
  }
}
