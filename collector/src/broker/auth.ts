/**
 * Authentication and ACL of the embedded broker, as aedes hooks (`authenticate`,
 * `authorizePublish`, `authorizeSubscribe`) in this one file. An agent's username binds its
 * connection to one site and host: it may publish only `hw/v1/{site}/{host}/{birth|state|report}`
 * and subscribe only to its own `ack` and `cmd` and to `hw/v1/_collector/state`.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { type FSWatcher, mkdirSync, watch } from 'node:fs';
import { basename, dirname } from 'node:path';
import { AGENT_TOPIC_KINDS, COLLECTOR_STATE_TOPIC, COLLECTOR_TOPIC_KINDS, parseTopic } from '@hashwatch/protocol';
import type { AuthenticateError, Client, PublishPacket, Subscription } from 'aedes';
import type { Logger } from 'pino';
import { type AgentCredential, readCredentials } from './credentials.js';
import { LogThrottle } from './guards.js';
import { verifySecret } from './secret.js';

/** Who a connection is: an agent bound to its site/host, or an anonymous demo client. */
export type Identity = { kind: 'agent'; username: string; site: string; host: string } | { kind: 'anonymous' };

/** Every reason the embedded broker refuses something; counted in `stats()` and logged throttled. */
export const REFUSAL_REASONS = [
  'anonymous_refused',
  'unknown_user',
  'bad_password',
  'revoked',
  'publish_denied',
  'subscribe_denied',
  'too_many_connections',
  'too_many_from_address',
  'rate_limited',
  'packet_too_large',
  'malformed_packet',
  'connect_timeout',
  'keepalive_refused',
] as const;
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

/** Counts refusals by reason and logs each (reason, client) at most once per window. */
export class Refusals {
  readonly counts: Record<RefusalReason, number> = Object.fromEntries(REFUSAL_REASONS.map((r) => [r, 0])) as Record<
    RefusalReason,
    number
  >;
  private readonly throttle: LogThrottle;

  constructor(
    private readonly log: Logger,
    windowMs: number,
  ) {
    this.throttle = new LogThrottle(windowMs);
  }

  record(reason: RefusalReason, who: string, fields: Record<string, unknown> = {}, message = 'MQTT refusal'): void {
    this.counts[reason]++;
    if (this.throttle.shouldLog(`${reason}\u0000${who}`, Date.now())) {
      this.log.warn({ event: 'broker_refusal', reason, client: who, ...fields }, message);
    }
  }
}

// --- pure ACL -------------------------------------------------------------------------------------

const AGENT_KINDS: readonly string[] = AGENT_TOPIC_KINDS;
const COLLECTOR_KINDS: readonly string[] = COLLECTOR_TOPIC_KINDS;

/** May `identity` publish to `topic`? Anonymous clients may publish agent topics of any valid site/host. */
export function mayPublish(identity: Identity, topic: string): boolean {
  const parsed = parseTopic(topic);
  if (!parsed.ok || !AGENT_KINDS.includes(parsed.value.kind)) return false;
  if (identity.kind === 'anonymous') return true;
  return parsed.value.site === identity.site && parsed.value.host === identity.host;
}

/**
 * May `identity` subscribe to `filter`? Only exact topics (no wildcards, no `$` topics): its own
 * ack/cmd and the collector's presence. Anonymous clients may name any one host's ack/cmd.
 */
export function maySubscribe(identity: Identity, filter: string): boolean {
  if (filter === COLLECTOR_STATE_TOPIC) return true;
  if (filter.includes('+') || filter.includes('#') || filter.startsWith('$')) return false;
  const parsed = parseTopic(filter);
  if (!parsed.ok || !COLLECTOR_KINDS.includes(parsed.value.kind)) return false;
  if (identity.kind === 'anonymous') return true;
  return parsed.value.site === identity.site && parsed.value.host === identity.host;
}

// --- hooks ----------------------------------------------------------------------------------------

function authError(returnCode: 4 | 5, message: string): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError;
}

function sha256(data: Buffer): Buffer {
  return createHash('sha256').update(data).digest();
}

export interface BrokerAuthOptions {
  credentialsFile: string;
  allowAnonymous: boolean;
  watch: boolean;
  log: Logger;
  refusals: Refusals;
}

/** The broker's credentials, live identities and hooks. `start()` loads the file; `stop()` unwatches it. */
export class BrokerAuth {
  private agents = new Map<string, AgentCredential>();
  /** Password digests that already passed scrypt, per username and hash: reconnect storms stay cheap. */
  private readonly verified = new Map<string, { secretHash: string; digest: Buffer }>();
  private readonly identities = new WeakMap<Client, Identity>();
  /** Live authenticated clients, so a revoked agent's connection can be dropped. */
  private readonly live = new Set<Client>();
  private readonly byClientId = new Map<string, Client>();
  private watcher: FSWatcher | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private reloading: Promise<void> = Promise.resolve();

  constructor(private readonly options: BrokerAuthOptions) {}

  async start(): Promise<void> {
    await this.load(true);
    if (this.options.watch) this.startWatching();
  }

  stop(): void {
    this.watcher?.close();
    this.watcher = undefined;
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = undefined;
    this.live.clear();
    this.byClientId.clear();
  }

  /** Re-reads the credentials file (on change or SIGHUP) and drops connections of removed agents. */
  reload(): Promise<void> {
    this.reloading = this.reloading.then(() => this.load(false));
    return this.reloading;
  }

  /** The identity of a connected client, by MQTT client id (for `InboundMessage.username`). */
  identityOf(clientId: string): Identity | undefined {
    const client = this.byClientId.get(clientId);
    return client ? this.identities.get(client) : undefined;
  }

  agentCount(): number {
    return this.agents.size;
  }

  private startWatching(): void {
    const file = this.options.credentialsFile;
    const dir = dirname(file);
    const name = basename(file);
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      // The directory, not the file: `add-agent` replaces the file by rename, which a file watch misses.
      this.watcher = watch(dir, (_event, changed) => {
        if (changed !== null && changed !== name) return;
        if (this.debounce) clearTimeout(this.debounce);
        this.debounce = setTimeout(() => {
          this.debounce = undefined;
          void this.reload();
        }, 100);
      });
      this.watcher.on('error', (err) => {
        this.options.log.warn(
          { event: 'credentials_watch_failed', file, err: err.message },
          'Credentials watch failed',
        );
      });
    } catch (err) {
      this.options.log.warn(
        { event: 'credentials_watch_failed', file, err: (err as Error).message },
        'Cannot watch the credentials file; send SIGHUP to reload it after changes',
      );
    }
  }

  private async load(initial: boolean): Promise<void> {
    const { credentialsFile: file, log } = this.options;
    let read: Awaited<ReturnType<typeof readCredentials>>;
    try {
      read = await readCredentials(file);
    } catch (err) {
      if (initial) throw err;
      // Keep the previous list: a broken edit must not lock every agent out.
      log.error({ event: 'credentials_reload_failed', file, err: (err as Error).message }, 'Credentials not reloaded');
      return;
    }
    for (const problem of read.problems) {
      log.error({ event: 'credentials_entry_invalid', file, problem }, `Credentials entry ignored: ${problem}`);
    }
    if (!read.exists && initial && !this.options.allowAnonymous) {
      log.warn(
        { event: 'credentials_missing', file },
        'No credentials file yet: no agent can connect until `hashwatch-collector add-agent` creates one',
      );
    }
    const next = new Map(read.agents.map((a) => [a.username, a]));
    this.agents = next;
    for (const [username, v] of this.verified) {
      if (next.get(username)?.secret_hash !== v.secretHash) this.verified.delete(username);
    }
    for (const client of [...this.live]) {
      const id = this.identities.get(client);
      if (id?.kind !== 'agent') continue;
      const now = next.get(id.username);
      if (now && now.site === id.site && now.host === id.host && this.stillValid(client, now)) continue;
      this.live.delete(client);
      this.options.refusals.record(
        'revoked',
        client.id,
        { username: id.username, site: id.site, host: id.host },
        'Agent credentials removed or changed: connection dropped',
      );
      client.close();
    }
    if (!initial) log.info({ event: 'credentials_reloaded', file, agents: next.size }, 'Credentials reloaded');
  }

  /** A changed secret revokes connections made with the old one. */
  private readonly secretAtLogin = new WeakMap<Client, string>();
  private stillValid(client: Client, cred: AgentCredential): boolean {
    return this.secretAtLogin.get(client) === cred.secret_hash;
  }

  private track(client: Client, identity: Identity, secretHash?: string): void {
    this.identities.set(client, identity);
    if (secretHash !== undefined) this.secretAtLogin.set(client, secretHash);
    this.live.add(client);
    this.byClientId.set(client.id, client);
    client.conn.once('close', () => {
      this.live.delete(client);
      if (this.byClientId.get(client.id) === client) this.byClientId.delete(client.id);
    });
  }

  readonly authenticate = (
    client: Client,
    username: string | undefined,
    password: Buffer | undefined,
    done: (error: AuthenticateError | null, success: boolean | null) => void,
  ): void => {
    const { refusals } = this.options;
    if (username === undefined || username === '') {
      if (this.options.allowAnonymous) {
        this.track(client, { kind: 'anonymous' });
        done(null, true);
        return;
      }
      refusals.record('anonymous_refused', client.id, {}, 'Client without username refused');
      done(authError(5, 'Not authorized: a username and password are required'), false);
      return;
    }
    const cred = this.agents.get(username);
    if (cred === undefined) {
      refusals.record('unknown_user', client.id, { username }, 'Unknown MQTT username refused');
      done(authError(4, 'Bad username or password'), false);
      return;
    }
    const pw = password ?? Buffer.alloc(0);
    const digest = sha256(pw);
    const accept = () => {
      this.track(client, { kind: 'agent', username, site: cred.site, host: cred.host }, cred.secret_hash);
      done(null, true);
    };
    const cached = this.verified.get(username);
    if (cached && cached.secretHash === cred.secret_hash && timingSafeEqual(cached.digest, digest)) {
      accept();
      return;
    }
    verifySecret(pw.toString('utf8'), cred.secret_hash).then(
      (ok) => {
        // The file may have been reloaded while scrypt ran: judge against what is current now.
        if (ok && this.agents.get(username)?.secret_hash === cred.secret_hash) {
          this.verified.set(username, { secretHash: cred.secret_hash, digest });
          accept();
          return;
        }
        refusals.record('bad_password', client.id, { username }, 'Wrong MQTT password refused');
        done(authError(4, 'Bad username or password'), false);
      },
      (err: Error) => {
        refusals.record('bad_password', client.id, { username, err: err.message }, 'MQTT password check failed');
        done(authError(4, 'Bad username or password'), false);
      },
    );
  };

  readonly authorizePublish = (
    client: Client | null,
    packet: PublishPacket,
    callback: (error?: Error | null) => void,
  ): void => {
    // Null client: the broker's own publishes (the collector in-process, retained presence).
    if (client === null) {
      callback(null);
      return;
    }
    const identity = this.identities.get(client);
    if (identity !== undefined && mayPublish(identity, packet.topic)) {
      callback(null);
      return;
    }
    this.options.refusals.record(
      'publish_denied',
      client.id,
      { topic: packet.topic.slice(0, 256), ...identityFields(identity) },
      'Publish outside the client’s own topics refused',
    );
    callback(new Error(`Not authorized to publish to ${packet.topic.slice(0, 256)}`));
  };

  readonly authorizeSubscribe = (
    client: Client,
    sub: Subscription,
    callback: (error: Error | null, subscription?: Subscription | null) => void,
  ): void => {
    const identity = this.identities.get(client);
    if (identity !== undefined && maySubscribe(identity, sub.topic)) {
      callback(null, sub);
      return;
    }
    this.options.refusals.record(
      'subscribe_denied',
      client.id,
      { filter: sub.topic.slice(0, 256), ...identityFields(identity) },
      'Subscription outside the client’s own topics refused',
    );
    // Negated, not an error: the client gets a failure code for this filter and stays connected.
    callback(null, null);
  };
}

function identityFields(identity: Identity | undefined): Record<string, string> {
  if (identity?.kind === 'agent') return { username: identity.username, site: identity.site, host: identity.host };
  return { username: identity?.kind ?? 'unknown' };
}
