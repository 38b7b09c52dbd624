/**
 * External mode: the collector is an mqtt.js client of an existing broker (mosquitto, EMQX, …).
 * Persistent session (stable client id, `clean: false`) and QoS 1, and the PUBACK of each message
 * waits until the handler resolves: a collector that dies before its commit gets the message
 * again from the broker. Subscriptions are re-made on every connect, so a broker that lost its
 * sessions (restart without persistence) is survived too.
 */
import { readFileSync } from 'node:fs';
import { AGENT_TOPIC_KINDS, COLLECTOR_STATE_TOPIC, topicFilter } from '@hashwatch/protocol';
import mqtt, { type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import type { ExternalBrokerConfig } from './config.js';
import { collectorStatePayload } from './presence.js';
import type { MessageHandler, PublishOptions, Transport, TransportHealth } from './transport.js';

/** A start-up problem with the external broker settings. */
export class ExternalBrokerError extends Error {
  override readonly name = 'ExternalBrokerError';
}

/** Subscription filters for the configured sites (or all), optionally as a shared subscription. */
export function externalFilters(config: Pick<ExternalBrokerConfig, 'sites' | 'share_group'>): string[] {
  const sites = config.sites.length > 0 ? config.sites : [undefined];
  const shareGroup = config.share_group === '' ? undefined : config.share_group;
  return sites.flatMap((site) =>
    AGENT_TOPIC_KINDS.map((kind) =>
      topicFilter(kind, { ...(site ? { site } : {}), ...(shareGroup ? { shareGroup } : {}) }),
    ),
  );
}

/** Resolves or rejects with `promise`, or rejects after `ms`; never leaves its timer behind. */
function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Passed to mqtt.js' handleMessage callback: "go on parsing, the PUBACK is sent later by us". */
const ACK_LATER = Object.freeze(new Error('hashwatch: PUBACK deferred until the handler resolves'));

interface Unacked {
  messageId: number;
  settled: boolean;
  /** Connection generation: a PUBACK never goes out on a newer connection than its PUBLISH came in. */
  generation: number;
}

function readFileOption(path: string, key: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new ExternalBrokerError(`Cannot read broker.external.${key} ${path}: ${(err as Error).message}`);
  }
}

export class ExternalBroker implements Transport {
  private handler: MessageHandler | undefined;
  private client: MqttClient | undefined;
  private generation = 0;
  private unacked: Unacked[] = [];
  /** mqtt.js' continuation while the window of unacked messages is full. */
  private resume: (() => void) | undefined;
  private lastError = '';
  private stopping: Promise<void> | undefined;
  private firstConnect: { resolve: () => void; reject: (err: Error) => void } | undefined;
  private messagesIn = 0;
  private handlerErrors = 0;
  private connects = 0;

  constructor(
    private readonly config: ExternalBrokerConfig,
    private readonly log: Logger,
    private readonly collectorId: string,
  ) {}

  onMessage(handler: MessageHandler): void {
    this.handler = handler;
  }

  /** Connects; resolves at the first CONNACK + SUBACK, rejects if the first attempt fails. */
  start(): Promise<void> {
    if (this.client) return Promise.resolve();
    const c = this.config;
    const password =
      c.password_file !== ''
        ? readFileOption(c.password_file, 'password_file').toString('utf8').split(/\r?\n/)[0]
        : c.password;
    const options: IClientOptions = {
      clientId: c.client_id,
      clean: c.clean_session,
      protocolVersion: c.protocol_version,
      keepalive: c.keepalive_s,
      connectTimeout: c.connect_timeout_ms,
      reconnectPeriod: c.reconnect_period_ms,
      // We subscribe on every connect ourselves (a broker restart may have lost the session).
      resubscribe: false,
      rejectUnauthorized: c.reject_unauthorized,
      will: {
        topic: COLLECTOR_STATE_TOPIC,
        payload: Buffer.from(collectorStatePayload(this.collectorId, 'offline', Date.now())),
        qos: 1,
        retain: true,
      },
      ...(c.username !== '' ? { username: c.username } : {}),
      ...(password ? { password } : {}),
      ...(c.protocol_version === 5 && !c.clean_session
        ? { properties: { sessionExpiryInterval: c.session_expiry_s } }
        : {}),
      ...(c.ca_file !== '' ? { ca: readFileOption(c.ca_file, 'ca_file') } : {}),
      ...(c.cert_file !== '' ? { cert: readFileOption(c.cert_file, 'cert_file') } : {}),
      ...(c.key_file !== '' ? { key: readFileOption(c.key_file, 'key_file') } : {}),
    };
    if (c.share_group !== '' && c.protocol_version !== 5) {
      this.log.warn(
        { event: 'share_group_v4' },
        'broker.external.share_group with protocol_version 4 relies on a broker extension (mosquitto and EMQX have one)',
      );
    }
    const started = new Promise<void>((resolve, reject) => {
      this.firstConnect = { resolve, reject };
    });
    const client = mqtt.connect(c.url, options);
    this.client = client;
    client.handleMessage = (packet, callback) => this.handleMessage(packet, callback);
    client.on('connect', (connack) => {
      this.generation++;
      this.connects++;
      this.unacked = [];
      this.resume = undefined;
      void this.onConnect(client, connack.sessionPresent);
    });
    client.on('close', () => {
      // PUBACKs owed on the dead connection are void: the broker redelivers those messages.
      this.generation++;
      this.unacked = [];
      this.resume = undefined;
    });
    client.on('offline', () =>
      this.log.warn({ event: 'broker_offline', url: c.url }, 'External MQTT broker unreachable'),
    );
    client.on('reconnect', () => this.log.debug({ event: 'broker_reconnect', url: c.url }, 'Reconnecting'));
    client.on('error', (err) => {
      this.lastError = err.message;
      this.log.error({ event: 'broker_error', url: c.url, err: err.message }, 'External MQTT broker error');
      if (this.firstConnect) {
        const first = this.firstConnect;
        this.firstConnect = undefined;
        first.reject(new ExternalBrokerError(`Cannot connect to ${c.url} as ${c.client_id}: ${err.message}`));
        void this.stop();
      }
    });
    return started;
  }

  private async onConnect(client: MqttClient, sessionPresent: boolean): Promise<void> {
    const filters = externalFilters(this.config);
    try {
      const granted = await client.subscribeAsync(filters, { qos: 1 });
      const refused = granted.filter((g) => g.qos !== 0 && g.qos !== 1 && g.qos !== 2).map((g) => g.topic);
      if (refused.length > 0) {
        throw new Error(`the broker refused the subscriptions ${refused.join(', ')} (check the ACL of this user)`);
      }
      await client.publishAsync(COLLECTOR_STATE_TOPIC, collectorStatePayload(this.collectorId, 'online', Date.now()), {
        qos: 1,
        retain: true,
      });
      this.lastError = '';
      this.log.info(
        { event: 'broker_connected', mode: 'external', url: this.config.url, session_present: sessionPresent, filters },
        'Connected to external MQTT broker',
      );
      const first = this.firstConnect;
      this.firstConnect = undefined;
      first?.resolve();
    } catch (err) {
      const message = (err as Error).message;
      this.lastError = message.startsWith('Subscribe error')
        ? `the broker refused a subscription to ${filters.join(', ')} (${message}): check the ACL of this user`
        : message;
      this.log.error({ event: 'broker_subscribe_failed', err: this.lastError }, 'Subscribing failed');
      const first = this.firstConnect;
      this.firstConnect = undefined;
      if (first) {
        first.reject(new ExternalBrokerError(`Connected to ${this.config.url} but ${this.lastError}`));
        void this.stop();
      }
    }
  }

  /**
   * mqtt.js calls this for each PUBLISH, one at a time, and sends the PUBACK when `callback` is
   * called without error. To keep batching possible, up to `max_unacked` messages are handled
   * concurrently: we release mqtt.js' parser at once and send their PUBACKs ourselves, in
   * arrival order, each only after its handler settled.
   */
  private handleMessage(packet: IPublishPacket, callback: (error?: Error) => void): void {
    const msg = {
      topic: packet.topic,
      payload: Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload),
    };
    this.messagesIn++;
    const done = this.runHandler(msg);
    const client = this.client;
    const sendPacket = (client as unknown as { _sendPacket?: (p: object) => void } | undefined)?._sendPacket;
    if (
      packet.qos !== 1 ||
      packet.messageId === undefined ||
      typeof sendPacket !== 'function' ||
      this.config.max_unacked === 1
    ) {
      // Plain path (QoS 0/2, or an mqtt.js without the internal we rely on): one message at a time.
      void done.then(() => callback());
      return;
    }
    const entry: Unacked = { messageId: packet.messageId, settled: false, generation: this.generation };
    this.unacked.push(entry);
    void done.then(() => {
      entry.settled = true;
      this.flushAcks();
    });
    if (this.unacked.length < this.config.max_unacked) callback(ACK_LATER);
    else this.resume = () => callback(ACK_LATER);
  }

  private flushAcks(): void {
    const client = this.client as unknown as { _sendPacket: (p: object) => void } | undefined;
    while (this.unacked[0]?.settled) {
      const head = this.unacked.shift() as Unacked;
      if (head.generation === this.generation && client) {
        client._sendPacket({ cmd: 'puback', messageId: head.messageId });
      }
    }
    if (this.resume && this.unacked.length < this.config.max_unacked) {
      const resume = this.resume;
      this.resume = undefined;
      resume();
    }
  }

  /** Settles when the handler did; a failing handler is logged and its message still acked (see README). */
  private async runHandler(msg: { topic: string; payload: Buffer }): Promise<void> {
    try {
      await this.handler?.(msg);
    } catch (err) {
      this.handlerErrors++;
      this.log.error(
        { event: 'handler_failed', topic: msg.topic, err: (err as Error)?.message },
        'Message handler failed',
      );
    }
  }

  /** Nothing to re-read: the external broker holds the agents' credentials (see Transport.reload). */
  async reload(): Promise<void> {}

  stop(): Promise<void> {
    if (this.stopping) return this.stopping;
    this.stopping = (async () => {
      const client = this.client;
      if (!client) return;
      if (client.connected) {
        // Bounded: a broker that stops answering must not hang shutdown.
        await withTimeout(
          client.publishAsync(COLLECTOR_STATE_TOPIC, collectorStatePayload(this.collectorId, 'offline', Date.now()), {
            qos: 1,
            retain: true,
          }),
          2_000,
        ).catch(() => {});
      }
      this.generation++;
      this.unacked = [];
      this.resume = undefined;
      // A clean DISCONNECT (no Will); forced if the broker does not take it in time.
      const ended = await withTimeout(client.endAsync(false), 2_000).then(
        () => true,
        () => false,
      );
      if (!ended) await client.endAsync(true).catch(() => {});
      client.removeAllListeners();
      client.on('error', () => {});
      this.client = undefined;
    })();
    return this.stopping;
  }

  publish(topic: string, payload: string | Buffer, options: PublishOptions): Promise<void> {
    const client = this.client;
    if (!client) return Promise.reject(new Error('External broker connection is not started'));
    return client.publishAsync(topic, payload, { qos: options.qos, retain: options.retain }).then(() => undefined);
  }

  health(): TransportHealth {
    const up = this.client?.connected === true;
    return {
      up,
      mode: 'external',
      ...(up ? {} : { detail: this.lastError || `not connected to ${this.config.url}` }),
    };
  }

  stats(): { connects: number; messagesIn: number; handlerErrors: number; unacked: number } {
    return {
      connects: this.connects,
      messagesIn: this.messagesIn,
      handlerErrors: this.handlerErrors,
      unacked: this.unacked.length,
    };
  }
}
