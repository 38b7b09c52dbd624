/**
 * The WebSocket live view: streams the FleetView to browsers as a snapshot on connect, then
 * coalesced deltas per tick and a summary per interval (see README.md in this folder for the frames).
 * Mounted on any node:http server: the owner routes `upgrade` requests for `path` to `handleUpgrade`.
 *
 * Memory is bounded per client: a client whose socket does not drain (slow phone, stalled tab) stops
 * receiving deltas as soon as its buffered bytes would pass `maxBufferedBytes`, and gets one fresh
 * snapshot when its buffer has drained, instead of an ever-growing backlog.
 */
import { type IncomingMessage, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocket, WebSocketServer } from 'ws';
import type { FleetDelta, FleetView, HostView, IncidentView, RigView } from '../fleet/view.js';
import { checkUpgrade } from './auth.js';
import { Ring } from './history.js';
import {
  filterPoint,
  incidentHost,
  matches,
  projectHost,
  projectIncident,
  projectRig,
  projectSites,
  summarize,
} from './project.js';
import {
  type DeltaFrame,
  type ErrorFrame,
  LIVE_PROTOCOL_VERSION,
  type LiveErrorReason,
  type LiveFilter,
  type LiveHost,
  type LiveIncident,
  type LiveRig,
  type LiveSite,
  type LiveSummaryPoint,
  parseClientMessage,
  type SnapshotFrame,
} from './protocol.js';

export interface LiveOptions {
  /** URL path of the WebSocket endpoint. */
  path?: string;
  /** Deltas are coalesced per entity and sent once per tick. */
  tickMs?: number;
  /**
   * Site roll-ups (one pass over every rig of the fleet) are recomputed at most this often, not every
   * tick: at 50k rigs the 4 Hz roll-up alone took ~6 % of the collector, and a tile needs no more than 1 Hz.
   */
  siteRollupMs?: number;
  /** How often a summary point (chart data) is taken and sent. */
  summaryIntervalMs?: number;
  /** How much summary history a new client gets, and how long closed incidents stay in a snapshot. */
  historyMs?: number;
  /** A client that has not answered the previous ping when the next one is due is terminated. */
  heartbeatIntervalMs?: number;
  /** Connections beyond this are refused with HTTP 503. */
  maxClients?: number;
  /** Client frames above this get an `error` frame; frames above 16× this are closed by ws with 1009. */
  maxClientMessageBytes?: number;
  /** Per-client send buffer (bytes queued in ws and the socket) past which deltas are dropped for a resync. */
  maxBufferedBytes?: number;
  /** Invalid client messages tolerated per `strikeWindowMs` before closing with 1008 (policy violation). */
  maxStrikes?: number;
  strikeWindowMs?: number;
  /** Subscribe messages allowed per `strikeWindowMs` (each costs a snapshot); more count as strikes. */
  maxSubscribesPerWindow?: number;
  /** Bearer token required from clients (header or `?token=`); empty = none. */
  token?: string;
  /** Origins allowed to connect; empty = same host only; `*` = any. */
  allowedOrigins?: string[];
  /** Collector clock, injectable for tests. */
  now?: () => number;
  logger?: Pick<Logger, 'info' | 'warn' | 'debug'>;
}

/** Defaults, one object, units in the names. */
export const LIVE_DEFAULTS = {
  path: '/live',
  tickMs: 250,
  siteRollupMs: 1000,
  summaryIntervalMs: 10_000,
  historyMs: 3_600_000,
  heartbeatIntervalMs: 30_000,
  maxClients: 200,
  maxClientMessageBytes: 4096,
  maxBufferedBytes: 1024 * 1024,
  maxStrikes: 5,
  strikeWindowMs: 60_000,
  maxSubscribesPerWindow: 20,
} as const;

type Settings = typeof LIVE_DEFAULTS & Pick<LiveOptions, 'token' | 'allowedOrigins' | 'logger'> & { now: () => number };

interface Client {
  id: number;
  ws: WebSocket;
  remote: string;
  filter: LiveFilter;
  /** Answered the last ping. */
  alive: boolean;
  /** Fell behind: deltas are dropped until a fresh snapshot can be sent. */
  resync: boolean;
  /** Bytes of the last snapshot: the delta budget on top of `maxBufferedBytes` while it drains. */
  snapshotBytes: number;
  strikes: number;
  subscribes: number;
  windowStartMs: number;
}

/** Counters for /metrics and tests. */
export interface LiveStats {
  clients: number;
  connectionsTotal: number;
  refusedTotal: number;
  resyncsTotal: number;
  heartbeatTimeoutsTotal: number;
  policyClosesTotal: number;
  framesSentTotal: number;
  /** Highest `bufferedAmount` seen right after a send, over all clients. */
  peakBufferedBytes: number;
}

const noopLogger = { info() {}, warn() {}, debug() {} };

export class LiveServer {
  private readonly settings: Settings;
  private lastSiteRollupMs = Number.NEGATIVE_INFINITY;
  private wss: WebSocketServer | undefined;
  private readonly clients = new Map<number, Client>();
  private nextId = 1;
  // Changed since the last tick, coalesced per entity. The views are the FleetView's own objects,
  // one per rig or host for good, so they are their own keys (a string key and a wrapper per
  // sample were ~4 % of what 100-rig ingest allocated).
  private readonly pendingRigs = new Set<RigView>();
  private readonly pendingHosts = new Set<HostView>();
  private readonly pendingIncidents = new Map<string, IncidentView>();
  private sitesDirty = false;
  private readonly lastSiteJson = new Map<string, string>();
  private history: Ring<LiveSummaryPoint>;
  private timers: NodeJS.Timeout[] = [];
  private readonly onChange = (delta: FleetDelta) => this.record(delta);
  private readonly counters = {
    connectionsTotal: 0,
    refusedTotal: 0,
    resyncsTotal: 0,
    heartbeatTimeoutsTotal: 0,
    policyClosesTotal: 0,
    framesSentTotal: 0,
    peakBufferedBytes: 0,
  };

  constructor(
    private readonly view: FleetView,
    options: LiveOptions = {},
  ) {
    const defined = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
    this.settings = { ...LIVE_DEFAULTS, now: Date.now, ...defined } as Settings;
    this.history = new Ring(Math.max(1, Math.ceil(this.settings.historyMs / this.settings.summaryIntervalMs)));
  }

  get path(): string {
    return this.settings.path;
  }

  start(): void {
    if (this.wss) return;
    const s = this.settings;
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: Math.max(64 * 1024, s.maxClientMessageBytes * 16),
      perMessageDeflate: false,
      clientTracking: false,
    });
    this.history = new Ring(this.history.capacity);
    this.lastSiteJson.clear();
    for (const site of projectSites(this.view).values()) this.lastSiteJson.set(site.site, JSON.stringify(site));
    this.history.push(summarize(this.view, s.now()));
    this.view.on('change', this.onChange);
    this.timers.push(setInterval(() => this.flush(), s.tickMs));
    this.timers.push(setInterval(() => this.takeSummary(), s.summaryIntervalMs));
    this.timers.push(setInterval(() => this.heartbeat(), s.heartbeatIntervalMs));
  }

  /** Closes every client with 1001 (going away) and releases timers and the view listener. */
  stop(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    this.view.off('change', this.onChange);
    for (const c of this.clients.values()) c.ws.close(1001, 'Collector is shutting down');
    // A client that does not complete the close handshake must not keep the process alive.
    for (const c of this.clients.values()) setTimeout(() => c.ws.terminate(), 1000).unref();
    this.clients.clear();
    this.clearPending();
    this.wss?.close();
    this.wss = undefined;
  }

  stats(): LiveStats {
    return { clients: this.clients.size, ...this.counters };
  }

  /** Per-client view for tests and debugging: filter, buffered bytes, whether it awaits a resync. */
  clientInfo(): { id: number; filter: LiveFilter; bufferedBytes: number; resync: boolean }[] {
    return [...this.clients.values()].map((c) => ({
      id: c.id,
      filter: { ...c.filter },
      bufferedBytes: c.ws.bufferedAmount,
      resync: c.resync,
    }));
  }

  /**
   * Takes over an HTTP upgrade for `path`. Refusals are plain HTTP answers (401 token, 403 origin,
   * 404 path, 503 full or stopped) so a browser's devtools show why.
   */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const url = new URL(req.url ?? '/', 'http://localhost');
    const wss = this.wss;
    const verdict = checkUpgrade(req.headers, url, this.settings);
    if (!wss) this.refuse(req, socket, 503, 'Live view is not running');
    else if (url.pathname !== this.settings.path) this.refuse(req, socket, 404, 'No live view at this path');
    else if (!verdict.ok) this.refuse(req, socket, verdict.status, verdict.reason);
    else if (this.clients.size >= this.settings.maxClients) {
      this.refuse(req, socket, 503, `Live view is full (${this.settings.maxClients} clients)`);
    } else wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, req));
  }

  private refuse(req: IncomingMessage, socket: Duplex, status: number, reason: string): void {
    this.counters.refusedTotal++;
    this.settings.logger?.warn(
      { remote: req.socket.remoteAddress, status, reason, origin: req.headers.origin },
      'live view connection refused',
    );
    if (socket.writable) {
      socket.end(
        `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n` +
          `Content-Length: ${Buffer.byteLength(reason)}\r\n\r\n${reason}`,
      );
    }
    socket.destroy();
  }

  private accept(ws: WebSocket, req: IncomingMessage): void {
    if (!this.wss) {
      ws.terminate();
      return;
    }
    const client: Client = {
      id: this.nextId++,
      ws,
      remote: `${req.socket.remoteAddress}:${req.socket.remotePort}`,
      filter: {},
      alive: true,
      resync: false,
      snapshotBytes: 0,
      strikes: 0,
      subscribes: 0,
      windowStartMs: this.settings.now(),
    };
    this.clients.set(client.id, client);
    this.counters.connectionsTotal++;
    const log = this.settings.logger ?? noopLogger;
    log.info({ client: client.id, remote: client.remote }, 'live view client connected');
    ws.on('pong', () => {
      client.alive = true;
    });
    ws.on('message', (data, isBinary) => this.onMessage(client, data as Buffer, isBinary));
    ws.on('error', (err) => log.debug({ client: client.id, err: err.message }, 'live view client socket error'));
    ws.on('close', (code) => {
      this.clients.delete(client.id);
      log.info({ client: client.id, remote: client.remote, code }, 'live view client disconnected');
    });
    this.sendSnapshot(client, 'connect');
  }

  private onMessage(client: Client, data: Buffer, isBinary: boolean): void {
    const s = this.settings;
    const now = s.now();
    if (now - client.windowStartMs > s.strikeWindowMs) {
      client.windowStartMs = now;
      client.strikes = 0;
      client.subscribes = 0;
    }
    const parsed = parseClientMessage(data, isBinary, s.maxClientMessageBytes);
    if (!parsed.ok) {
      this.strike(client, parsed.reason, parsed.message);
      return;
    }
    if (++client.subscribes > s.maxSubscribesPerWindow) {
      this.strike(client, 'rate_limited', `More than ${s.maxSubscribesPerWindow} subscribes per minute`);
      return;
    }
    client.filter = parsed.message.filter;
    // A client behind on its buffer gets the new snapshot when it drains, like any resync.
    if (client.resync || client.ws.bufferedAmount > s.maxBufferedBytes / 2) client.resync = true;
    else this.sendSnapshot(client, 'subscribe');
  }

  private strike(client: Client, reason: LiveErrorReason, message: string): void {
    client.strikes++;
    const frame: ErrorFrame = { type: 'error', reason, message };
    this.send(client, JSON.stringify(frame));
    if (client.strikes >= this.settings.maxStrikes) {
      this.counters.policyClosesTotal++;
      this.settings.logger?.warn(
        { client: client.id, remote: client.remote, reason },
        'live view client closed after repeated invalid messages',
      );
      client.ws.close(1008, 'Too many invalid messages');
    }
  }

  private record(delta: FleetDelta): void {
    // Without clients there is nobody to send deltas to: a client that connects gets a snapshot.
    // The site roll-ups are still marked, so the next comparison starts from the real state.
    const watched = this.clients.size > 0;
    switch (delta.type) {
      case 'rig':
        if (watched) this.pendingRigs.add(delta.rig);
        this.sitesDirty = true;
        break;
      case 'host':
        if (watched) this.pendingHosts.add(delta.host);
        this.sitesDirty = true;
        break;
      case 'incident':
        if (watched) this.pendingIncidents.set(delta.incident.id, delta.incident);
        break;
      case 'site':
        this.sitesDirty = true;
        break;
    }
  }

  /** Site roll-ups whose JSON differs from what was last sent. */
  private changedSites(): LiveSite[] {
    if (!this.sitesDirty) return [];
    const nowMs = this.settings.now();
    if (nowMs - this.lastSiteRollupMs < this.settings.siteRollupMs) return [];
    this.lastSiteRollupMs = nowMs;
    this.sitesDirty = false;
    const out: LiveSite[] = [];
    for (const site of projectSites(this.view).values()) {
      const json = JSON.stringify(site);
      if (this.lastSiteJson.get(site.site) === json) continue;
      this.lastSiteJson.set(site.site, json);
      out.push(site);
    }
    return out;
  }

  /** One tick: resync clients that drained, then send each client its filtered share of the batch. */
  private flush(): void {
    const s = this.settings;
    for (const c of this.clients.values()) {
      if (c.resync && c.ws.readyState === WebSocket.OPEN && c.ws.bufferedAmount <= s.maxBufferedBytes / 4) {
        this.sendSnapshot(c, 'resync');
      }
    }
    const sites = this.changedSites();
    const changes = this.pendingRigs.size + this.pendingHosts.size + this.pendingIncidents.size;
    if (changes === 0 && sites.length === 0) return;
    const rigs = Array.from(this.pendingRigs, projectRig);
    const hosts = Array.from(this.pendingHosts, projectHost);
    const incidents = Array.from(this.pendingIncidents.values(), projectIncident);
    this.clearPending();
    const nowMs = s.now();
    // Clients with the same filter share one serialization.
    const encoded = new Map<string, string | null>();
    for (const c of this.clients.values()) {
      if (c.resync) continue;
      const key = `${c.filter.site ?? ''}/${c.filter.host ?? ''}`;
      let data = encoded.get(key);
      if (data === undefined) {
        const f = c.filter;
        const frame: DeltaFrame = {
          type: 'delta',
          nowMs,
          sites: sites.filter((x) => matches(f, x.site)),
          hosts: hosts.filter((x) => matches(f, x.site, x.host)),
          rigs: rigs.filter((x) => matches(f, x.site, x.host)),
          incidents: incidents.filter((x) => matches(f, x.site, incidentHost(x))),
        };
        const empty = frame.sites.length + frame.hosts.length + frame.rigs.length + frame.incidents.length === 0;
        data = empty ? null : JSON.stringify(frame);
        encoded.set(key, data);
      }
      if (data !== null) this.send(c, data);
    }
  }

  private clearPending(): void {
    this.pendingRigs.clear();
    this.pendingHosts.clear();
    this.pendingIncidents.clear();
  }

  private takeSummary(): void {
    const point = summarize(this.view, this.settings.now());
    this.history.push(point);
    const encoded = new Map<string, string>();
    for (const c of this.clients.values()) {
      if (c.resync) continue;
      const key = c.filter.site ?? '';
      let data = encoded.get(key);
      if (data === undefined) {
        data = JSON.stringify({ type: 'summary', nowMs: point.ts, point: filterPoint(point, c.filter) });
        encoded.set(key, data);
      }
      this.send(c, data);
    }
  }

  private heartbeat(): void {
    for (const c of this.clients.values()) {
      if (!c.alive) {
        this.counters.heartbeatTimeoutsTotal++;
        this.settings.logger?.info({ client: c.id, remote: c.remote }, 'live view client missed a heartbeat');
        c.ws.terminate();
        this.clients.delete(c.id);
        continue;
      }
      c.alive = false;
      c.ws.ping();
    }
  }

  private buildSnapshot(filter: LiveFilter, reason: SnapshotFrame['reason']): SnapshotFrame {
    const nowMs = this.settings.now();
    const keepClosedAfterMs = nowMs - this.settings.historyMs;
    const rigs: LiveRig[] = [];
    for (const r of this.view.rigs.values()) if (matches(filter, r.site, r.host)) rigs.push(projectRig(r));
    const hosts: LiveHost[] = [];
    for (const h of this.view.hosts.values()) if (matches(filter, h.site, h.host)) hosts.push(projectHost(h));
    const incidents: LiveIncident[] = [];
    for (const i of this.view.incidents.values()) {
      if (i.endMs !== undefined && i.endMs < keepClosedAfterMs) continue;
      if (matches(filter, i.site, incidentHost(i))) incidents.push(projectIncident(i));
    }
    const sites = [...projectSites(this.view).values()].filter((x) => matches(filter, x.site));
    return {
      type: 'snapshot',
      v: LIVE_PROTOCOL_VERSION,
      nowMs,
      reason,
      filter: { ...filter },
      summaryIntervalMs: this.settings.summaryIntervalMs,
      sites,
      hosts,
      rigs,
      incidents,
      history: this.history.toArray().map((p) => filterPoint(p, filter)),
    };
  }

  private sendSnapshot(client: Client, reason: SnapshotFrame['reason']): void {
    if (client.ws.readyState !== WebSocket.OPEN) return;
    const data = JSON.stringify(this.buildSnapshot(client.filter, reason));
    client.resync = false;
    client.snapshotBytes = Buffer.byteLength(data);
    if (reason === 'resync') {
      this.settings.logger?.info({ client: client.id, bytes: client.snapshotBytes }, 'live view client resynced');
    }
    this.write(client, data);
  }

  /**
   * Sends a delta, summary or error frame unless it would push the client's buffer past its budget;
   * then the client is marked for a resync and nothing more is queued for it.
   */
  private send(client: Client, data: string): void {
    if (client.ws.readyState !== WebSocket.OPEN || client.resync) return;
    const budget = this.settings.maxBufferedBytes + client.snapshotBytes;
    if (client.ws.bufferedAmount + Buffer.byteLength(data) > budget) {
      client.resync = true;
      this.counters.resyncsTotal++;
      this.settings.logger?.info(
        { client: client.id, remote: client.remote, bufferedBytes: client.ws.bufferedAmount },
        'live view client is too slow: dropping deltas until it drains',
      );
      return;
    }
    this.write(client, data);
  }

  private write(client: Client, data: string): void {
    client.ws.send(data);
    this.counters.framesSentTotal++;
    const buffered = client.ws.bufferedAmount;
    if (buffered > this.counters.peakBufferedBytes) this.counters.peakBufferedBytes = buffered;
  }
}
