/**
 * How the collector talks MQTT, whichever broker carries it: the embedded aedes broker (default)
 * or a client connection to an external broker (mosquitto, EMQX, …). Ingest sees only this
 * interface; the broker module knows nothing of SQLite.
 */

/** A message that arrived on a hashwatch topic. */
export interface InboundMessage {
  topic: string;
  payload: Buffer;
  /** MQTT client id of the publisher, when the broker knows it (embedded mode). */
  clientId?: string;
  /** Authenticated username of the publisher, when the broker knows it (embedded mode). */
  username?: string;
}

/**
 * Resolve when the message may be acknowledged to the broker. In external mode the collector's
 * PUBACK waits for this (so an unprocessed message is redelivered after a crash); the embedded
 * broker may PUBACK earlier (see DESIGN.md "Durability"): either way the agent trusts only `…/ack`.
 */
export type MessageHandler = (msg: InboundMessage) => Promise<void> | void;

export interface PublishOptions {
  qos: 0 | 1;
  retain: boolean;
}

export interface TransportHealth {
  /** Embedded: listening. External: connected to the broker. */
  up: boolean;
  mode: 'embedded' | 'external';
  /** Connected MQTT clients (embedded mode only). */
  clients?: number;
  /** Human-readable detail for /readyz when not up. */
  detail?: string;
}

export interface Transport {
  /** Registers the single handler for inbound hashwatch messages; call before start(). */
  onMessage(handler: MessageHandler): void;
  /** Embedded: listen. External: connect and subscribe. Rejects with a clear error on failure. */
  start(): Promise<void>;
  /** Stops accepting, closes every socket and timer it made. Idempotent. */
  stop(): Promise<void>;
  publish(topic: string, payload: string | Buffer, options: PublishOptions): Promise<void>;
  health(): TransportHealth;
  /**
   * Re-reads what may change without a restart (the collector's SIGHUP). Embedded: the credentials
   * file, dropping removed agents. External: nothing, the broker holds the credentials.
   */
  reload(): Promise<void>;
}
