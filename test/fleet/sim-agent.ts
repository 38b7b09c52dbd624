/**
 * One simulated agent on the wire: the real protocol without the rigs. It connects with a Last
 * Will (`offline`/`lost`, retained), publishes its birth and `online` state (QoS 1, retained),
 * sends QoS 1 reports, and consumes the collector's acks (validated with the protocol's decoder)
 * and commands (`rebirth` republishes the birth). It keeps no spool: what it measures is the
 * collector, from the agent's side (report → ack latency, acked rig samples).
 *
 * Two ways to send: `interval` (one report every `intervalMs`, random phase, like a real farm) and
 * `flood` (keep `maxInflight` reports unacknowledged at all times: the collector's throughput).
 * `injectFault` swaps the report template for one with a fault baked in (see payload.ts) and
 * records the `ts` of the first report that carries it.
 */
import { randomUUID } from 'node:crypto';
import { type AgentState, agentTopic, COLLECTOR_STATE_TOPIC, decode, encode } from '@hashwatch/protocol';
import mqtt, { type MqttClient } from 'mqtt';
import { birthFor, type ReportTemplate } from './payload.js';

export interface SimAgentOptions {
  url: string;
  site: string;
  host: string;
  template: ReportTemplate;
  intervalMs: number;
  mode: 'interval' | 'flood';
  /** Flood: reports kept unacknowledged. Interval: ignored (one per tick). */
  maxInflight: number;
  /** Reports are stamped `ts = now - backdateMs` (0 for live reports). */
  backdateMs?: number;
  username?: string;
  password?: string;
  /** mqtt.js protocol version: 4 (3.1.1) or 5. */
  protocolVersion?: 4 | 5;
  connectTimeoutMs?: number;
}

export interface SimAgentStats {
  sent: number;
  acked: number;
  ackedSamples: number;
  /** Report publish → ack received, ms, one entry per acked report since the last `takeLatencies()`. */
  latenciesMs: number[];
  rejectedInbound: number;
  rebirths: number;
  resendsAsked: number;
  disconnects: number;
}

/** A fault switched on with `injectFault`, and the first report that carried it. */
export interface SimAgentFault {
  kind: 'hardware' | 'uplink';
  rigs: string[];
  firstTs?: number;
  seq?: number;
}

export class SimAgent {
  readonly bootId: string;
  private readonly o: SimAgentOptions;
  /** What each report carries: the healthy template until a fault swaps it. */
  private template: ReportTemplate;
  private faultState: SimAgentFault | undefined;
  private client: MqttClient | undefined;
  private timer: NodeJS.Timeout | undefined;
  private phaseTimer: NodeJS.Timeout | undefined;
  private seq = 0;
  private running = false;
  /** seq → publish time (performance.now()), for reports not yet acked. */
  private readonly pending = new Map<number, number>();
  private readonly s: SimAgentStats = {
    sent: 0,
    acked: 0,
    ackedSamples: 0,
    latenciesMs: [],
    rejectedInbound: 0,
    rebirths: 0,
    resendsAsked: 0,
    disconnects: 0,
  };

  constructor(options: SimAgentOptions, bootId: string = randomUUID()) {
    this.o = options;
    this.bootId = bootId;
    this.template = options.template;
  }

  get site(): string {
    return this.o.site;
  }

  get host(): string {
    return this.o.host;
  }

  /**
   * From the next report on, send `template` (the same rigs with a fault baked in) instead of the
   * healthy one. The first such report's `ts` and `seq` are kept (`fault`): the origin of the
   * collector's state-change latency.
   */
  injectFault(template: ReportTemplate, kind: SimAgentFault['kind'], rigs: string[]): void {
    if (template.rigs !== this.template.rigs) throw new Error('A fault template must keep the rig count');
    this.template = template;
    this.faultState = { kind, rigs };
  }

  /** The injected fault, once a report carrying it has been sent. */
  get fault(): Readonly<SimAgentFault> | undefined {
    return this.faultState?.firstTs !== undefined ? this.faultState : undefined;
  }

  private state(status: 'online' | 'offline', reason?: 'lost' | 'shutdown'): string {
    const msg: AgentState = { v: 1, boot_id: this.bootId, conn: 1, ts: Date.now(), status };
    if (reason) msg.reason = reason;
    const out = encode('state', msg, Date.now());
    if (!out.ok) throw new Error(`Bug: invalid state message: ${out.error.message}`);
    return out.value;
  }

  private publishBirth(client: MqttClient): void {
    const now = Date.now();
    const birth = encode('birth', birthFor(this.bootId, 1, this.template.rigs, this.o.intervalMs, now), now);
    if (!birth.ok) throw new Error(`Bug: invalid birth: ${birth.error.message}`);
    client.publish(agentTopic(this.o.site, this.o.host, 'birth'), birth.value, { qos: 1, retain: true });
  }

  /** Connects, subscribes to ack/cmd, publishes birth and `online`. Resolves once subscribed. */
  async connect(): Promise<void> {
    const { site, host } = this.o;
    const client = mqtt.connect(this.o.url, {
      clientId: `fleet-${site}-${host}`,
      clean: true,
      protocolVersion: this.o.protocolVersion ?? 4,
      keepalive: 60,
      reconnectPeriod: 0,
      connectTimeout: this.o.connectTimeoutMs ?? 30_000,
      ...(this.o.username ? { username: this.o.username } : {}),
      ...(this.o.password ? { password: this.o.password } : {}),
      will: {
        topic: agentTopic(site, host, 'state'),
        payload: Buffer.from(this.state('offline', 'lost')),
        qos: 1,
        retain: true,
      },
    });
    this.client = client;
    client.on('message', (topic, payload) => this.onMessage(topic, payload));
    client.on('close', () => {
      if (this.running) this.s.disconnects++;
    });
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', reject);
    });
    client.on('error', () => {
      // counted through 'close'; an error must not crash the simulator
    });
    await client.subscribeAsync([agentTopic(site, host, 'ack'), agentTopic(site, host, 'cmd'), COLLECTOR_STATE_TOPIC], {
      qos: 1,
    });
    this.publishBirth(client);
    await client.publishAsync(agentTopic(site, host, 'state'), this.state('online'), { qos: 1, retain: true });
  }

  /** Starts sending reports. */
  go(): void {
    if (this.running) return;
    this.running = true;
    if (this.o.mode === 'flood') {
      this.fill();
      return;
    }
    // A random phase spreads a fleet's reports over the interval, as independent hosts do.
    this.phaseTimer = setTimeout(
      () => {
        this.phaseTimer = undefined;
        this.sendOne();
        this.timer = setInterval(() => this.sendOne(), this.o.intervalMs);
      },
      Math.floor(Math.random() * this.o.intervalMs),
    );
  }

  /** Stops sending; in-flight reports are still counted when their ack arrives. */
  pause(): void {
    this.running = false;
    clearTimeout(this.phaseTimer);
    clearInterval(this.timer);
    this.phaseTimer = undefined;
    this.timer = undefined;
  }

  /** Reports sent and not yet acknowledged. */
  get inflight(): number {
    return this.pending.size;
  }

  private fill(): void {
    while (this.running && this.pending.size < this.o.maxInflight) this.sendOne();
  }

  private sendOne(): void {
    const client = this.client;
    if (!client?.connected) return;
    const seq = this.seq++;
    const ts = Date.now() - (this.o.backdateMs ?? 0);
    const payload = this.template.render(seq, ts);
    if (this.faultState && this.faultState.firstTs === undefined) {
      this.faultState.firstTs = ts;
      this.faultState.seq = seq;
    }
    this.pending.set(seq, performance.now());
    this.s.sent++;
    client.publish(agentTopic(this.o.site, this.o.host, 'report'), payload, { qos: 1 });
  }

  private onMessage(topic: string, payload: Buffer): void {
    const now = Date.now();
    if (topic.endsWith('/ack')) {
      const ack = decode('ack', payload, now);
      if (!ack.ok) {
        this.s.rejectedInbound++;
        return;
      }
      const t = performance.now();
      for (const entry of ack.value.acks) {
        if (entry.boot_id !== this.bootId) continue;
        for (const [from, to] of entry.ranges) {
          for (let seq = from; seq <= to; seq++) {
            const sentAt = this.pending.get(seq);
            if (sentAt === undefined) continue;
            this.pending.delete(seq);
            this.s.acked++;
            this.s.ackedSamples += this.template.rigs;
            this.s.latenciesMs.push(t - sentAt);
          }
        }
      }
      if (this.o.mode === 'flood') this.fill();
    } else if (topic.endsWith('/cmd')) {
      const cmd = decode('cmd', payload, now);
      if (!cmd.ok) {
        this.s.rejectedInbound++;
        return;
      }
      if (cmd.value.cmd === 'rebirth' && this.client) {
        this.s.rebirths++;
        this.publishBirth(this.client);
      } else if (cmd.value.cmd === 'resend') {
        this.s.resendsAsked++;
      }
    }
  }

  /** Counters since start; latencies since the last call (they are handed over, not kept). */
  takeStats(): SimAgentStats {
    const out = { ...this.s, latenciesMs: this.s.latenciesMs };
    this.s.latenciesMs = [];
    return out;
  }

  /** Clean stop: `offline`/`shutdown` (retained), then disconnect. Bounded in time. */
  async stop(): Promise<void> {
    this.pause();
    const client = this.client;
    this.client = undefined;
    if (!client) return;
    if (client.connected) {
      await Promise.race([
        client.publishAsync(agentTopic(this.o.site, this.o.host, 'state'), this.state('offline', 'shutdown'), {
          qos: 1,
          retain: true,
        }),
        new Promise((r) => setTimeout(r, 2000).unref()),
      ]).catch(() => {});
    }
    await client.endAsync(true).catch(() => {});
    client.removeAllListeners();
  }
}
