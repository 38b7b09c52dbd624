/**
 * Embedded mode: an aedes broker in the collector's process, on plain TCP and optionally TLS and
 * WebSocket. The collector itself is an in-process subscriber (no socket, no ACL), so the only
 * network clients are agents. Every connection passes the guards (caps, rate, packet size) before
 * aedes parses a byte; auth and ACL live in `auth.ts`.
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createNetServer, isIP, type Server as NetServer, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { AGENT_TOPIC_KINDS, COLLECTOR_STATE_TOPIC, topicFilter } from '@hashwatch/protocol';
import { Aedes, type AedesPublishPacket, type Client } from 'aedes';
import type { Logger } from 'pino';
import { createWebSocketStream, WebSocketServer } from 'ws';
import { BrokerAuth, REFUSAL_REASONS, type RefusalReason, Refusals } from './auth.js';
import type { EmbeddedBrokerConfig } from './config.js';
import { ConnectionLimiter, guardStream } from './guards.js';
import { collectorStatePayload } from './presence.js';
import type { MessageHandler, PublishOptions, Transport, TransportHealth } from './transport.js';

/** Counters of the embedded broker, for /metrics. */
export interface BrokerStats {
  refusals: Record<RefusalReason, number>;
  connectedClients: number;
  /** Agents with credentials in the file. */
  agentsConfigured: number;
  /** Inbound messages handed to ingest, and handler failures. */
  messagesIn: number;
  handlerErrors: number;
}

/** A start-up problem the operator must fix (bad bind, missing certificate, …). */
export class BrokerStartError extends Error {
  override readonly name = 'BrokerStartError';
}

/** True for 127.0.0.0/8, ::1, and `localhost`: addresses no other machine can reach. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1' || host === '::ffff:127.0.0.1';
}

function readPem(path: string, key: string): Buffer {
  if (path === '') throw new BrokerStartError(`broker.embedded.tls.${key} is required when tls.enabled is true`);
  try {
    return readFileSync(path);
  } catch (err) {
    throw new BrokerStartError(`Cannot read broker.embedded.tls.${key} ${path}: ${(err as Error).message}`);
  }
}

type Listener = NetServer | TlsServer | HttpServer;

function listen(server: Listener, host: string, port: number, what: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) =>
      reject(new BrokerStartError(`Cannot listen for ${what} on ${host}:${port}: ${err.message}`));
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      const addr = server.address();
      resolve(typeof addr === 'object' && addr !== null ? addr.port : port);
    });
  });
}

function closeServer(server: Listener): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

export class EmbeddedBroker implements Transport {
  private handler: MessageHandler | undefined;
  private aedes: Aedes | undefined;
  private auth: BrokerAuth | undefined;
  private readonly refusals: Refusals;
  private readonly limiter: ConnectionLimiter;
  private readonly servers: Listener[] = [];
  private wss: WebSocketServer | undefined;
  private readonly sockets = new Set<Duplex>();
  private readonly subscriptions: { filter: string; fn: (p: AedesPublishPacket, cb: () => void) => void }[] = [];
  private pruneTimer: NodeJS.Timeout | undefined;
  private running = false;
  private stopping: Promise<void> | undefined;
  private messagesIn = 0;
  private handlerErrors = 0;
  /** Ports actually bound (useful with port 0). */
  readonly ports: { mqtt?: number; mqtts?: number; ws?: number } = {};

  constructor(
    private readonly config: EmbeddedBrokerConfig,
    private readonly log: Logger,
    private readonly credentialsFile: string,
    private readonly collectorId: string,
  ) {
    this.refusals = new Refusals(log, config.refusal_log_interval_ms);
    this.limiter = new ConnectionLimiter({
      maxConnections: config.max_connections,
      maxPerAddress: config.max_connections_per_address,
      connectsPerMinute: config.max_connects_per_address_per_minute,
    });
  }

  onMessage(handler: MessageHandler): void {
    this.handler = handler;
  }

  async start(): Promise<void> {
    if (this.running) return;
    const c = this.config;
    const binds = [c.host];
    if (c.tls.enabled) binds.push(c.tls.host || c.host);
    if (c.websocket.enabled) binds.push(c.websocket.host || c.host);
    if (c.allow_anonymous) {
      const open = binds.filter((h) => !isLoopback(h));
      if (open.length > 0) {
        throw new BrokerStartError(
          `broker.embedded.allow_anonymous is true but the broker would listen on ${open.join(', ')}: anonymous access is only allowed on loopback (127.0.0.1). Set allow_anonymous: false and add agents with \`hashwatch-collector add-agent\`, or bind to 127.0.0.1`,
        );
      }
    }
    const tlsOptions = c.tls.enabled
      ? {
          cert: readPem(c.tls.cert_file, 'cert_file'),
          key: readPem(c.tls.key_file, 'key_file'),
          ...(c.tls.ca_file !== '' ? { ca: readPem(c.tls.ca_file, 'ca_file') } : {}),
          requestCert: c.tls.require_client_cert,
          rejectUnauthorized: c.tls.require_client_cert,
        }
      : undefined;
    if (c.tls.require_client_cert && c.tls.ca_file === '') {
      throw new BrokerStartError('broker.embedded.tls.ca_file is required when tls.require_client_cert is true');
    }

    const auth = new BrokerAuth({
      credentialsFile: this.credentialsFile,
      allowAnonymous: c.allow_anonymous,
      watch: c.watch_credentials,
      log: this.log,
      refusals: this.refusals,
    });
    await auth.start();
    this.auth = auth;

    try {
      const aedes = await Aedes.createBroker({
        id: `hashwatch-${this.collectorId}`,
        connectTimeout: c.connect_timeout_ms,
        keepaliveLimit: c.max_keepalive_s,
        maxClientsIdLength: 128,
        authenticate: auth.authenticate,
        authorizePublish: auth.authorizePublish,
        authorizeSubscribe: auth.authorizeSubscribe,
      });
      this.aedes = aedes;
      aedes.on('clientError', (client, err) => this.onClientError(client, err));
      aedes.on('connectionError', (client, err) => this.onClientError(client, err));

      for (const kind of AGENT_TOPIC_KINDS) {
        const filter = topicFilter(kind);
        const fn = (packet: AedesPublishPacket, cb: () => void) => this.deliver(packet, cb);
        await new Promise<void>((resolve) => aedes.subscribe(filter, fn, resolve));
        this.subscriptions.push({ filter, fn });
      }

      const tcp = createNetServer((socket) => this.accept(socket, socket.remoteAddress));
      this.servers.push(tcp);
      this.ports.mqtt = await listen(tcp, c.host, c.port, 'MQTT');
      if (tlsOptions) {
        const tls = createTlsServer(tlsOptions, (socket) => this.accept(socket, socket.remoteAddress));
        tls.on('tlsClientError', (err, socket) => {
          this.log.debug({ event: 'tls_client_error', remote: socket.remoteAddress, err: err.message }, 'TLS failed');
        });
        this.servers.push(tls);
        this.ports.mqtts = await listen(tls, c.tls.host || c.host, c.tls.port, 'MQTT over TLS');
      }
      if (c.websocket.enabled) {
        const http = createHttpServer((_req, res) => {
          res.writeHead(426, { 'content-type': 'text/plain' }).end('MQTT over WebSocket only\n');
        });
        this.servers.push(http);
        const wss = new WebSocketServer({
          server: http,
          path: c.websocket.path,
          maxPayload: c.max_packet_bytes,
          handleProtocols: (protocols) =>
            protocols.has('mqtt') ? 'mqtt' : protocols.has('mqttv3.1') ? 'mqttv3.1' : false,
        });
        wss.on('connection', (ws, req) => {
          this.accept(createWebSocketStream(ws), req.socket.remoteAddress, ws.terminate.bind(ws));
        });
        wss.on('error', (err) => this.log.warn({ event: 'websocket_error', err: err.message }, 'WebSocket error'));
        this.wss = wss;
        this.ports.ws = await listen(http, c.websocket.host || c.host, c.websocket.port, 'MQTT over WebSocket');
      }
    } catch (err) {
      await this.teardown();
      throw err;
    }
    this.pruneTimer = setInterval(() => this.limiter.prune(Date.now()), 60_000);
    this.pruneTimer.unref();
    this.running = true;
    await this.publish(COLLECTOR_STATE_TOPIC, collectorStatePayload(this.collectorId, 'online', Date.now()), {
      qos: 1,
      retain: true,
    });
    this.log.info(
      { event: 'broker_started', mode: 'embedded', ports: this.ports, agents: auth.agentCount() },
      'Embedded MQTT broker listening',
    );
  }

  stop(): Promise<void> {
    if (this.stopping) return this.stopping;
    this.stopping = (async () => {
      if (this.running && this.aedes) {
        // Retained, so agents that connect later also learn nobody is listening.
        await this.publish(COLLECTOR_STATE_TOPIC, collectorStatePayload(this.collectorId, 'offline', Date.now()), {
          qos: 1,
          retain: true,
        }).catch(() => {});
      }
      this.running = false;
      await this.teardown();
    })();
    return this.stopping;
  }

  private async teardown(): Promise<void> {
    if (this.pruneTimer) clearInterval(this.pruneTimer);
    this.pruneTimer = undefined;
    const servers = this.servers.splice(0);
    const closing = servers.map(closeServer);
    this.wss?.close();
    this.wss = undefined;
    const aedes = this.aedes;
    if (aedes) {
      for (const { filter, fn } of this.subscriptions.splice(0)) {
        await new Promise<void>((resolve) => aedes.unsubscribe(filter, fn, resolve));
      }
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
    }
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await Promise.all(closing);
    this.aedes = undefined;
    this.auth?.stop();
    this.auth = undefined;
  }

  /** Re-reads the credentials file now (SIGHUP); removed agents are disconnected. */
  async reload(): Promise<void> {
    await this.auth?.reload();
  }

  publish(topic: string, payload: string | Buffer, options: PublishOptions): Promise<void> {
    const aedes = this.aedes;
    if (!aedes) return Promise.reject(new Error('Embedded broker is not running'));
    return new Promise((resolve, reject) => {
      aedes.publish(
        {
          cmd: 'publish',
          topic,
          payload: typeof payload === 'string' ? Buffer.from(payload) : payload,
          qos: options.qos,
          retain: options.retain,
          dup: false,
        },
        (err) => (err ? reject(err) : resolve()),
      );
    });
  }

  health(): TransportHealth {
    const up = this.running && this.aedes !== undefined && !this.aedes.closed;
    return {
      up,
      mode: 'embedded',
      clients: this.aedes?.connectedClients ?? 0,
      ...(up ? {} : { detail: 'embedded broker is not running' }),
    };
  }

  stats(): BrokerStats {
    return {
      refusals: { ...this.refusals.counts },
      connectedClients: this.aedes?.connectedClients ?? 0,
      agentsConfigured: this.auth?.agentCount() ?? 0,
      messagesIn: this.messagesIn,
      handlerErrors: this.handlerErrors,
    };
  }

  private accept(stream: Duplex | Socket, remote: string | undefined, kill?: () => void): void {
    const aedes = this.aedes;
    const address = remote ?? 'unknown';
    if (!aedes || this.stopping) {
      stream.destroy();
      return;
    }
    const verdict = this.limiter.admit(address, Date.now());
    if (verdict !== 'ok') {
      this.refusals.record(verdict, address, { remote: address }, 'Connection refused by broker limits');
      kill?.();
      stream.destroy();
      return;
    }
    stream.on('error', () => {}); // surfaced through aedes' clientError; a reset must not crash us
    this.sockets.add(stream);
    stream.once('close', () => {
      this.sockets.delete(stream);
      this.limiter.release(address);
    });
    const guarded = guardStream(stream, this.config.max_packet_bytes, (why) => {
      this.refusals.record(
        why === 'too_large' ? 'packet_too_large' : 'malformed_packet',
        address,
        { remote: address, limit_bytes: this.config.max_packet_bytes },
        why === 'too_large' ? 'MQTT packet above max_packet_bytes: connection closed' : 'Malformed MQTT packet',
      );
      kill?.();
    });
    aedes.handle(guarded);
  }

  private onClientError(client: Client, err: Error): void {
    const who = client?.id || 'unknown';
    const msg = err.message ?? '';
    let reason: RefusalReason | undefined;
    if (msg.includes('connect did not arrive in time')) reason = 'connect_timeout';
    else if (msg.includes('keep alive limit')) reason = 'keepalive_refused';
    else if (/invalid|malformed|protocol|header|length|unknown command|not supported/i.test(msg)) {
      reason = 'malformed_packet';
    }
    if (reason !== undefined && (REFUSAL_REASONS as readonly string[]).includes(reason)) {
      this.refusals.record(reason, who, { err: msg.slice(0, 200) }, 'MQTT client dropped');
    } else {
      this.log.debug({ event: 'client_error', client: who, err: msg.slice(0, 200) }, 'MQTT client error');
    }
  }

  private deliver(packet: AedesPublishPacket, cb: () => void): void {
    const handler = this.handler;
    this.messagesIn++;
    if (!handler) {
      cb();
      return;
    }
    const clientId = (packet as AedesPublishPacket & { clientId?: string }).clientId;
    const identity = clientId !== undefined ? this.auth?.identityOf(clientId) : undefined;
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
    const msg = {
      topic: packet.topic,
      payload,
      ...(clientId !== undefined ? { clientId } : {}),
      ...(identity?.kind === 'agent' ? { username: identity.username } : {}),
    };
    // Do not hold aedes' delivery on ingest: the broker's PUBACK to the agent is independent of
    // commit in embedded mode (DESIGN.md "Durability"); the agent trusts only `…/ack`.
    cb();
    try {
      Promise.resolve(handler(msg)).catch((err: unknown) => this.onHandlerError(err, packet.topic));
    } catch (err) {
      this.onHandlerError(err, packet.topic);
    }
  }

  private onHandlerError(err: unknown, topic: string): void {
    this.handlerErrors++;
    this.log.error({ event: 'handler_failed', topic, err: (err as Error)?.message }, 'Message handler failed');
  }
}
