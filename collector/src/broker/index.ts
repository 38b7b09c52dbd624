/**
 * The collector's MQTT side: `createTransport` picks the embedded aedes broker or an external
 * broker connection from config. Ingest talks only to the returned `Transport`.
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { BrokerConfig } from './config.js';
import { EmbeddedBroker } from './embedded.js';
import { ExternalBroker } from './external.js';
import { defaultCollectorId } from './presence.js';
import type { Transport } from './transport.js';

export type { Identity, RefusalReason } from './auth.js';
export { REFUSAL_REASONS } from './auth.js';
export { BrokerConfig } from './config.js';
export type { AgentCredential } from './credentials.js';
export { addAgent, readCredentials, removeAgent, toMosquittoAcl } from './credentials.js';
export { BrokerStartError, type BrokerStats, EmbeddedBroker } from './embedded.js';
export { ExternalBroker, ExternalBrokerError } from './external.js';
export type { InboundMessage, MessageHandler, PublishOptions, Transport, TransportHealth } from './transport.js';

/** The transport plus what only one mode has; check with `instanceof EmbeddedBroker` or `'reload' in t`. */
export type BrokerTransport = EmbeddedBroker | ExternalBroker;

/** Where the credentials file lives: `embedded.credentials_file`, else `<dataDir>/credentials.yaml`. */
export function credentialsPath(config: BrokerConfig, dataDir = '.'): string {
  return config.embedded.credentials_file !== '' ? config.embedded.credentials_file : join(dataDir, 'credentials.yaml');
}

/**
 * Builds the transport for `config.mode`; nothing is opened until `start()`. `collectorId` names
 * this collector in its retained presence message (default: the machine's host name).
 */
export function createTransport(
  config: BrokerConfig,
  log: Logger,
  options: { dataDir?: string; collectorId?: string } = {},
): BrokerTransport & Transport {
  const collectorId = options.collectorId ?? defaultCollectorId();
  const child = log.child({ component: 'broker' });
  if (config.mode === 'external') return new ExternalBroker(config.external, child, collectorId);
  return new EmbeddedBroker(config.embedded, child, credentialsPath(config, options.dataDir), collectorId);
}
