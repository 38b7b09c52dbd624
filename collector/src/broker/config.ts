/**
 * The collector's `broker:` config section. Every key has a default; YAML keys are snake_case.
 * `mode: embedded` (default) runs an aedes broker in-process; `mode: external` connects to an
 * existing broker (mosquitto, EMQX, …) as a client. Only the sub-section of the chosen mode is read.
 */
import { LIMITS } from '@hashwatch/protocol';
import { type Static, Type } from '@sinclair/typebox';

const closed = { additionalProperties: false } as const;

export const EmbeddedTlsConfig = Type.Object(
  {
    /** Also listen for MQTT over TLS (mqtts://). */
    enabled: Type.Boolean({ default: false }),
    /** Address of the TLS listener; empty = same as `embedded.host`. */
    host: Type.String({ default: '' }),
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 8883 }),
    /** PEM certificate chain and private key of the broker. */
    cert_file: Type.String({ default: '' }),
    key_file: Type.String({ default: '' }),
    /** PEM CA bundle used to verify client certificates. */
    ca_file: Type.String({ default: '' }),
    /** Refuse TLS clients without a certificate signed by `ca_file` (username/password still apply). */
    require_client_cert: Type.Boolean({ default: false }),
  },
  { ...closed, default: {} },
);

export const EmbeddedWebSocketConfig = Type.Object(
  {
    /** Also accept MQTT over WebSocket (subprotocol `mqtt`), e.g. for agents behind HTTP-only egress. */
    enabled: Type.Boolean({ default: false }),
    /** Address of the WebSocket listener; empty = same as `embedded.host`. */
    host: Type.String({ default: '' }),
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 8083 }),
    /** URL path clients connect to. */
    path: Type.String({ default: '/mqtt' }),
  },
  { ...closed, default: {} },
);

export const EmbeddedBrokerConfig = Type.Object(
  {
    /** Address of the plain MQTT listener. Keep 127.0.0.1 unless agents on other hosts connect. */
    host: Type.String({ default: '127.0.0.1' }),
    /** Port of the plain MQTT listener (0 = any free port, for tests). */
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 1883 }),
    /**
     * YAML file of agent credentials (`hashwatch-collector add-agent` and `remove-agent` write it). Empty =
     * `<data_dir>/credentials.yaml`. Reloaded when it changes (and on SIGHUP via `reload()`).
     */
    credentials_file: Type.String({ default: '' }),
    /** Watch `credentials_file` and reload it on change; otherwise only `reload()` re-reads it. */
    watch_credentials: Type.Boolean({ default: true }),
    /**
     * Accept clients without a username (demos, tests). Only allowed when every listener is bound
     * to loopback; the broker refuses to start otherwise. See README for the anonymous ACL.
     */
    allow_anonymous: Type.Boolean({ default: false }),
    /** Close a connection that has not sent CONNECT within this time (slowloris guard). */
    connect_timeout_ms: Type.Integer({ minimum: 100, maximum: 300_000, default: 10_000 }),
    /** Refuse clients whose keepalive is 0 (never) or above this, so dead agents are noticed. */
    max_keepalive_s: Type.Integer({ minimum: 1, maximum: 65535, default: 600 }),
    /** Largest MQTT packet accepted; a larger one closes that connection. Default: protocol limit + 64 KiB. */
    max_packet_bytes: Type.Integer({
      minimum: 1024,
      maximum: 268_435_455,
      default: LIMITS.maxPayloadBytes + 65_536,
    }),
    /** Concurrent connections over all addresses. */
    max_connections: Type.Integer({ minimum: 1, default: 10_000 }),
    /** Concurrent connections from one remote address (a farm behind NAT is one address: keep it roomy). */
    max_connections_per_address: Type.Integer({ minimum: 1, default: 1_000 }),
    /** New connections per remote address per minute (token bucket, burst = this value). */
    max_connects_per_address_per_minute: Type.Integer({ minimum: 1, default: 600 }),
    /** A refusal of the same kind for the same client is logged at most once per this window. */
    refusal_log_interval_ms: Type.Integer({ minimum: 0, default: 300_000 }),
    tls: EmbeddedTlsConfig,
    websocket: EmbeddedWebSocketConfig,
  },
  { ...closed, default: {} },
);

export const ExternalBrokerConfig = Type.Object(
  {
    /** Broker URL: mqtt://, mqtts://, ws:// or wss://. */
    url: Type.String({ default: 'mqtt://127.0.0.1:1883' }),
    username: Type.String({ default: '' }),
    /** Password; prefer `password_file` or the HASHWATCH_COLLECTOR_BROKER__EXTERNAL__PASSWORD variable. */
    password: Type.String({ default: '' }),
    /** File holding the password (first line); wins over `password` when set. */
    password_file: Type.String({ default: '' }),
    /**
     * Stable client id: with `clean_session: false` the broker keeps the subscription and any
     * unacknowledged message for it across collector restarts. Give each collector its own.
     */
    client_id: Type.String({ minLength: 1, maxLength: 64, default: 'hashwatch-collector' }),
    /** 5 (default; needed for shared subscriptions) or 4 (MQTT 3.1.1). */
    protocol_version: Type.Unsafe<4 | 5>({ type: 'integer', enum: [4, 5], default: 5 }),
    /** false = persistent session: messages published while the collector is down wait for it. */
    clean_session: Type.Boolean({ default: false }),
    /** MQTT 5: how long the broker keeps the session after a disconnect. */
    session_expiry_s: Type.Integer({ minimum: 0, maximum: 4_294_967_295, default: 7 * 24 * 3600 }),
    /** Sites this collector ingests; empty = every site. */
    sites: Type.Array(Type.String({ pattern: '^[a-z0-9][a-z0-9_-]{0,62}$' }), { default: [] }),
    /** MQTT 5 shared-subscription group (`$share/{group}/…`): collectors in one group split messages. */
    share_group: Type.String({ pattern: '^([A-Za-z0-9_-]{1,64})?$', default: '' }),
    /** Messages handled concurrently before their PUBACK; PUBACKs still go out in arrival order. */
    max_unacked: Type.Integer({ minimum: 1, maximum: 65535, default: 100 }),
    keepalive_s: Type.Integer({ minimum: 0, maximum: 65535, default: 30 }),
    connect_timeout_ms: Type.Integer({ minimum: 100, default: 10_000 }),
    /** Wait between reconnect attempts. */
    reconnect_period_ms: Type.Integer({ minimum: 100, default: 2_000 }),
    /** PEM CA bundle to verify the broker (mqtts/wss); empty = system CAs. */
    ca_file: Type.String({ default: '' }),
    /** PEM client certificate and key, for brokers that require client certificates. */
    cert_file: Type.String({ default: '' }),
    key_file: Type.String({ default: '' }),
    /** Verify the broker's certificate. Turn off only for a lab. */
    reject_unauthorized: Type.Boolean({ default: true }),
  },
  { ...closed, default: {} },
);

export const BrokerConfig = Type.Object(
  {
    /** `embedded` (aedes in-process, default) or `external` (connect to an existing broker). */
    mode: Type.Unsafe<'embedded' | 'external'>({ type: 'string', enum: ['embedded', 'external'], default: 'embedded' }),
    embedded: EmbeddedBrokerConfig,
    external: ExternalBrokerConfig,
  },
  { ...closed, default: {} },
);

export type BrokerConfig = Static<typeof BrokerConfig>;
export type EmbeddedBrokerConfig = Static<typeof EmbeddedBrokerConfig>;
export type ExternalBrokerConfig = Static<typeof ExternalBrokerConfig>;
