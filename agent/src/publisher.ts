/**
 * The MQTT side of the agent: one connection at a time to the broker, birth and presence, live
 * reports first, the spool's backlog replayed after them (this boot's unsent reports, then older
 * boots' oldest first; rate-limited, bounded in flight), and the collector's acks and commands.
 * The spool is the source of truth: the MQTT client only ever holds packets in flight, and
 * anything sent but not acknowledged by the collector is sent again after a reconnect, an ack
 * timeout or a `resend` command.
 *
 * Reconnects are driven here (mqtt.js `reconnectPeriod: 0`): each attempt gets a fresh client
 * with its own Last Will (carrying this attempt's `conn`), the previous client is ended with
 * force, so no socket or timer outlives a connection.
 */
import { EventEmitter } from 'node:events';
import {
  type AgentState,
  agentTopic,
  type Birth,
  COLLECTOR_STATE_TOPIC,
  type Command,
  decode,
  encode,
  LIMITS,
  type ProtocolErrorCode,
} from '@hashwatch/protocol';
import { connect, type IClientOptions, type MqttClient } from 'mqtt';
import { type BackoffOptions, backoffDelayMs } from './backoff.js';
import type { Logger } from './log.js';
import type { Spool, SpoolRow } from './spool.js';

export interface PublisherOptions {
  site: string;
  host: string;
  /** Drawn once per process; on every report, birth, state and Will. */
  bootId: string;
  /** Stable MQTT client id, so the broker keeps the session (and queued acks) across reconnects. */
  clientId: string;
  url: string;
  username?: string;
  password?: string;
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer; rejectUnauthorized: boolean };
  keepaliveS: number;
  protocolVersion: 4 | 5;
  connectTimeoutMs: number;
  backoff: BackoffOptions;
  /** Backlog reports per second. */
  replayRatePerS: number;
  /** Reports sent and not yet acknowledged, at most (live reports count, but are never held back). */
  maxInflight: number;
  /** A sent report with no ack after this long is due again. */
  ackTimeoutMs: number;
  spool: Spool;
  log: Logger;
  /** Builds the birth for connection number `conn` (inventory and probe targets). */
  birth: (conn: number, nowMs: number) => Birth;
  now: () => number;
  random?: () => number;
}

/** What the publisher has seen, for the report's self-stats and for tests. */
export interface PublisherStats {
  connected: boolean;
  /** Connection attempts in this process (the `conn` of birth/state/Will). */
  conn: number;
  /** Successful connects. */
  connects: number;
  /** Report ts → collector ack, of the latest acknowledged live report. */
  publishLatencyMs: number | undefined;
  reportsSentLive: number;
  reportsSentReplay: number;
  acksReceived: number;
  /** Inbound acks/commands rejected, by protocol error code. */
  inboundRejected: Partial<Record<ProtocolErrorCode, number>>;
  connectErrors: number;
  collectorOnline: boolean | undefined;
}

/** Connections shorter than this do not reset the backoff: a flapping broker is not hammered. */
const STABLE_CONNECTION_MS = 10_000;
const STOP_TIMEOUT_MS = 3000;
const LIVE_LATENCY_TRACKED = 1000;

export class Publisher extends EventEmitter {
  private readonly o: PublisherOptions;
  private client: MqttClient | null = null;
  private stopped = true;
  private connectedAtMs: number | null = null;
  private attempt = 0;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private pumpTimer: NodeJS.Timeout | null = null;
  private readonly pumpTickMs: number;
  private tokens = 0;
  private lastPumpMs = 0;
  /** Live reports awaiting ack: key → report ts (for publish latency). */
  private readonly liveSent = new Map<string, { seq: number; ts: number }>();
  private readonly loggedRejections = new Set<string>();
  private readonly s: PublisherStats = {
    connected: false,
    conn: 0,
    connects: 0,
    publishLatencyMs: undefined,
    reportsSentLive: 0,
    reportsSentReplay: 0,
    acksReceived: 0,
    inboundRejected: {},
    connectErrors: 0,
    collectorOnline: undefined,
  };

  constructor(options: PublisherOptions) {
    super();
    this.o = options;
    this.pumpTickMs = Math.max(10, Math.min(250, Math.floor(1000 / options.replayRatePerS)));
  }

  private topic(kind: 'birth' | 'state' | 'report' | 'ack' | 'cmd'): string {
    return agentTopic(this.o.site, this.o.host, kind);
  }

  /** Starts connecting; returns at once (the connection comes and goes on its own). */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.openConnection();
  }

  get connected(): boolean {
    return this.s.connected;
  }

  stats(): PublisherStats {
    return { ...this.s, inboundRejected: { ...this.s.inboundRejected } };
  }

  private stateMessage(status: 'online' | 'offline', reason?: 'lost' | 'shutdown'): string {
    const msg: AgentState = { v: 1, boot_id: this.o.bootId, conn: this.s.conn, ts: this.o.now(), status };
    if (reason) msg.reason = reason;
    const out = encode('state', msg, this.o.now());
    if (!out.ok) throw new Error(`Bug: invalid state message: ${out.error.message}`);
    return out.value;
  }

  private openConnection(): void {
    if (this.stopped) return;
    this.reconnectTimer = null;
    this.s.conn++;
    const options: IClientOptions = {
      clientId: this.o.clientId,
      clean: false,
      protocolVersion: this.o.protocolVersion,
      keepalive: this.o.keepaliveS,
      reconnectPeriod: 0,
      connectTimeout: this.o.connectTimeoutMs,
      resubscribe: false,
      // mqtt-packet's default pre-builds a Buffer for each of the 65,536 packet ids (6 MB of heap,
      // a third of the agent's live heap) to save one 2-byte allocation per publish.
      writeCache: false,
      will: {
        topic: this.topic('state'),
        payload: Buffer.from(this.stateMessage('offline', 'lost')),
        qos: 1,
        retain: true,
      },
    };
    if (this.o.protocolVersion === 5) {
      // Keep the session (queued acks and commands) across a reconnect, as `clean: false` does in 3.1.1.
      options.properties = { sessionExpiryInterval: 7 * 86_400 };
    }
    if (this.o.username) options.username = this.o.username;
    if (this.o.password) options.password = this.o.password;
    if (this.o.tls) {
      if (this.o.tls.ca) options.ca = this.o.tls.ca;
      if (this.o.tls.cert) options.cert = this.o.tls.cert;
      if (this.o.tls.key) options.key = this.o.tls.key;
      options.rejectUnauthorized = this.o.tls.rejectUnauthorized;
    }
    const client = connect(this.o.url, options);
    this.client = client;
    client.on('connect', () => this.onConnect(client));
    client.on('message', (topic, payload) => this.onMessage(topic, payload));
    client.on('error', (err) => {
      if (client !== this.client) return;
      this.s.connectErrors++;
      this.o.log.warn(
        { err: err.message, code: (err as { code?: unknown }).code, url: this.o.url, conn: this.s.conn },
        'MQTT connection error',
      );
    });
    client.on('close', () => this.onClose(client));
  }

  private onConnect(client: MqttClient): void {
    if (client !== this.client || this.stopped) return;
    this.s.connected = true;
    this.s.connects++;
    this.connectedAtMs = this.o.now();
    this.o.log.info({ url: this.o.url, conn: this.s.conn, boot_id: this.o.bootId }, 'Connected to the MQTT broker');
    // Anything in flight on the last connection may be lost: send it again.
    this.o.spool.resetSent();
    this.liveSent.clear();
    client.subscribe(
      [this.topic('ack'), this.topic('cmd'), COLLECTOR_STATE_TOPIC].map((t) => t),
      { qos: 1 },
      (err) => {
        if (err && client === this.client) {
          this.o.log.error({ err: err.message }, 'Subscribing to ack/cmd failed; reconnecting');
          client.end(true);
        }
      },
    );
    this.publishBirth(client);
    client.publish(this.topic('state'), this.stateMessage('online'), { qos: 1, retain: true }, () => {});
    this.tokens = 0;
    this.lastPumpMs = this.o.now();
    this.startPump();
    this.emit('connected', this.s.conn);
  }

  private publishBirth(client: MqttClient): void {
    const now = this.o.now();
    const out = encode('birth', this.o.birth(this.s.conn, now), now);
    if (!out.ok) {
      this.o.log.error({ reason: out.error.message }, 'Bug: the birth message is invalid; not sent');
      return;
    }
    client.publish(this.topic('birth'), out.value, { qos: 1, retain: true }, () => {});
  }

  private onClose(client: MqttClient): void {
    if (client !== this.client) return;
    this.client = null;
    const wasConnected = this.s.connected;
    this.s.connected = false;
    this.stopPump();
    client.removeAllListeners();
    client.on('error', () => {}); // a late socket error on a dropped client must not crash the process
    client.end(true);
    if (wasConnected) {
      this.o.log.warn({ url: this.o.url, conn: this.s.conn }, 'Lost the MQTT connection; reports stay in the spool');
      this.emit('disconnected');
    }
    if (this.stopped) return;
    const upMs = this.connectedAtMs === null ? 0 : this.o.now() - this.connectedAtMs;
    this.connectedAtMs = null;
    if (wasConnected && upMs >= STABLE_CONNECTION_MS) this.attempt = 0;
    const delayMs = backoffDelayMs(this.attempt, this.o.backoff, this.o.random);
    this.attempt++;
    this.o.log.debug({ delay_ms: delayMs, attempt: this.attempt }, 'Reconnecting to the MQTT broker');
    this.reconnectTimer = setTimeout(() => this.openConnection(), delayMs);
  }

  /**
   * Hands a freshly spooled report to the broker at once (live reports go before the backlog).
   * When offline it does nothing: the report is in the spool and is replayed as historical.
   * `spooledAsSent`: the row was appended already marked sent (see `Spool.append`), so it is
   * not marked again; only valid while `connected` has not changed since the append.
   */
  sendLive(row: SpoolRow, spooledAsSent = false): void {
    const client = this.client;
    if (!client || !this.s.connected) return;
    client.publish(this.topic('report'), row.payload, { qos: 1 }, () => {});
    if (!spooledAsSent) this.o.spool.markSent([row], this.o.now());
    // The pump resends it if its ack does not come within the ack timeout.
    this.startPump();
    this.s.reportsSentLive++;
    this.liveSent.set(`${row.bootId}:${row.seq}`, { seq: row.seq, ts: row.ts });
    if (this.liveSent.size > LIVE_LATENCY_TRACKED) {
      const first = this.liveSent.keys().next();
      if (!first.done) this.liveSent.delete(first.value);
    }
  }

  /**
   * The pump ticks while connected and the spool holds anything (backlog, or reports awaiting
   * their ack), and stops when the spool is empty, the usual state between two rounds: an idle
   * agent would otherwise wake up 20 times a second (at the default rate) to find nothing to send.
   * Whatever adds to the spool while connected calls `startPump` (sendLive, resend, reconnect).
   */
  private startPump(): void {
    if (this.pumpTimer || !this.client || !this.s.connected) return;
    this.pumpTimer = setInterval(() => this.pump(), this.pumpTickMs);
  }

  private stopPump(): void {
    if (this.pumpTimer) clearInterval(this.pumpTimer);
    this.pumpTimer = null;
  }

  /** Sends due backlog reports within the rate limit and the in-flight bound. */
  private pump(): void {
    const client = this.client;
    if (!client || !this.s.connected) return;
    if (this.o.spool.depth() === 0) {
      this.stopPump();
      return;
    }
    const now = this.o.now();
    const elapsedMs = Math.max(0, now - this.lastPumpMs);
    this.lastPumpMs = now;
    // A burst of at most one second's worth of reports.
    this.tokens = Math.min(
      Math.max(1, this.o.replayRatePerS),
      this.tokens + (elapsedMs * this.o.replayRatePerS) / 1000,
    );
    const resendBeforeMs = now - this.o.ackTimeoutMs;
    const room = this.o.maxInflight - this.o.spool.inflight(resendBeforeMs);
    const n = Math.min(Math.floor(this.tokens), room);
    if (n <= 0) return;
    const rows = this.o.spool.nextBatch(n, resendBeforeMs);
    if (rows.length === 0) return;
    for (const row of rows) {
      client.publish(this.topic('report'), asHistorical(row.payload), { qos: 1 }, () => {});
    }
    this.o.spool.markSent(rows, now);
    this.tokens -= rows.length;
    this.s.reportsSentReplay += rows.length;
  }

  private reject(kind: string, code: ProtocolErrorCode, message: string): void {
    this.s.inboundRejected[code] = (this.s.inboundRejected[code] ?? 0) + 1;
    const key = `${kind}:${code}`;
    // Logged once per (topic kind, reason): a misbehaving sender must not flood the log.
    if (this.loggedRejections.has(key)) return;
    this.loggedRejections.add(key);
    this.o.log.warn({ topic_kind: kind, code, reason: message }, `Rejected an inbound ${kind} message`);
  }

  private onMessage(topic: string, payload: Buffer): void {
    const now = this.o.now();
    if (topic === this.topic('ack')) {
      const res = decode('ack', payload, now);
      if (!res.ok) {
        this.reject('ack', res.error.code, res.error.message);
        return;
      }
      this.s.acksReceived++;
      for (const entry of res.value.acks) {
        this.o.spool.ack(entry.boot_id, entry.ranges);
        if (entry.boot_id === this.o.bootId) this.noteLatency(entry.ranges, now);
      }
      this.emit('ack', res.value);
      this.pump();
    } else if (topic === this.topic('cmd')) {
      const res = decode('cmd', payload, now);
      if (!res.ok) {
        this.reject('cmd', res.error.code, res.error.message);
        return;
      }
      this.onCommand(res.value);
    } else if (topic === COLLECTOR_STATE_TOPIC) {
      const res = decode('collector_state', payload, now);
      if (!res.ok) {
        this.reject('collector_state', res.error.code, res.error.message);
        return;
      }
      const online = res.value.status === 'online';
      if (online && this.s.collectorOnline === false) {
        // Whatever went out while nobody listened was never committed: send it again now.
        this.o.spool.resetSent();
        this.startPump();
      }
      if (online !== this.s.collectorOnline) {
        this.o.log.info(
          { collector_id: res.value.collector_id, status: res.value.status },
          'Collector presence changed',
        );
      }
      this.s.collectorOnline = online;
    }
  }

  private noteLatency(ranges: readonly (readonly [number, number])[], now: number): void {
    let latest: number | undefined;
    for (const [key, sent] of this.liveSent) {
      if (ranges.some(([from, to]) => sent.seq >= from && sent.seq <= to)) {
        this.liveSent.delete(key);
        if (latest === undefined || sent.ts > latest) latest = sent.ts;
      }
    }
    if (latest !== undefined) this.s.publishLatencyMs = Math.max(0, now - latest);
  }

  private onCommand(cmd: Command): void {
    if (cmd.cmd === 'rebirth') {
      this.o.log.info('Collector asked for a rebirth; republishing the birth');
      if (this.client && this.s.connected) this.publishBirth(this.client);
      return;
    }
    const toSeq = cmd.to_seq ?? LIMITS.maxCounter;
    const n = this.o.spool.markResend(cmd.boot_id, cmd.from_seq, toSeq);
    this.o.log.info(
      { boot_id: cmd.boot_id, from_seq: cmd.from_seq, to_seq: cmd.to_seq, still_spooled: n },
      'Collector asked for a resend',
    );
    this.startPump();
    this.pump();
  }

  /**
   * Clean stop: publishes `offline` (reason `shutdown`) when connected, disconnects (the broker
   * then discards the Last Will), and clears every timer. Bounded in time.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    this.stopPump();
    const client = this.client;
    this.client = null;
    this.s.connected = false;
    if (!client) return;
    client.removeAllListeners('close');
    client.removeAllListeners('connect');
    client.removeAllListeners('message');
    let ended = false;
    if (client.connected) {
      await withTimeout(
        new Promise<void>((resolve) => {
          client.publish(this.topic('state'), this.stateMessage('offline', 'shutdown'), { qos: 1, retain: true }, () =>
            resolve(),
          );
        }),
        STOP_TIMEOUT_MS,
      );
      await withTimeout(
        new Promise<void>((resolve) =>
          client.end(false, {}, () => {
            ended = true;
            resolve();
          }),
        ),
        STOP_TIMEOUT_MS,
      );
    }
    // Force-closes whatever the graceful path left (a hung socket, a pending connect).
    if (!ended)
      await withTimeout(new Promise<void>((resolve) => client.end(true, {}, () => resolve())), STOP_TIMEOUT_MS);
    client.removeAllListeners();
    client.on('error', () => {});
    this.o.log.info({ boot_id: this.o.bootId }, 'Disconnected from the MQTT broker (shutdown)');
  }
}

/** The replayed form of a spooled report: same bytes plus `historical: true`. */
export function asHistorical(payload: string): string {
  const report = JSON.parse(payload) as Record<string, unknown>;
  report['historical'] = true;
  return JSON.stringify(report);
}

async function withTimeout(promise: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  if (timer) clearTimeout(timer);
}
