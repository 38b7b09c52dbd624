/**
 * Ingest: every inbound MQTT message goes topic → decode → (dedupe → batch → commit → ack) for
 * reports, or → store + presence for births and states. A rejected message is counted by reason,
 * logged once per (reason, source) per window, never stored, and never throws out of `handle`.
 *
 * Delivery: a report is acked (`…/ack`, exact seq ranges per boot_id) only after the transaction
 * holding it committed with synchronous=FULL. A duplicate is not stored again but is re-acked, so an
 * agent whose ack was lost can still drain its spool. A failed commit acks nothing: the agent resends.
 */
import {
  type Ack,
  type AgentState,
  type AgentTopicKind,
  agentTopic,
  type Birth,
  type Command,
  decode,
  encode,
  parseTopic,
  type Report,
} from '@hashwatch/protocol';
import type { Logger } from 'pino';
import type { InboundMessage, PublishOptions } from '../broker/transport.js';
import type { HistogramSnapshot } from '../metrics/exposition.js';
import { LatencyHistogram } from '../metrics/histogram.js';
import { type StoreError, toStoreError } from '../store/errors.js';
import type { PendingReport, Store } from '../store/store.js';
import { LruSet } from './lru.js';
import { isStale, type Session } from './presence.js';
import { toRanges } from './ranges.js';

export interface IngestOptions {
  /** Longest a report waits for others to join its batch while no batch is being written. */
  batchMaxMs: number;
  /** A batch commits as soon as it holds this many rig samples. */
  batchMaxSamples: number;
  /** A live report whose ts differs from the receive time by more than this is flagged as skewed. */
  skewThresholdMs: number;
  /** Recently committed (host, boot_id, seq) keys remembered in memory; older ones hit the DB's unique key. */
  dedupeCacheSize: number;
  /** At most one `resend` command per host per this window. */
  resendMinIntervalMs: number;
  /** At most one `rebirth` command per host per this window. */
  rebirthMinIntervalMs: number;
  /** A rejection with the same (code, source) is logged at most once per this window. */
  rejectLogIntervalMs: number;
}

export type Publish = (topic: string, payload: string, options: PublishOptions) => Promise<void>;

/** A report that was newly stored (duplicates are not repeated here). */
export interface CommittedReport {
  site: string;
  host: string;
  report: Report;
  receivedAtMs: number;
}

export interface PresenceChange {
  site: string;
  host: string;
  session: Session;
}

export interface IngestStats {
  /** Reports validated and batched (a copy the commit then finds stored counts here too). */
  reportsAccepted: number;
  /** Reports committed: with `duplicates` and `rejected`, every message is counted once. */
  reportsStored: number;
  samplesStored: number;
  /** Copies re-acked: found in memory on arrival, or by the database's key at commit. */
  duplicates: number;
  rejected: Record<string, number>;
  skewed: number;
  batches: number;
  commitFailures: Record<string, number>;
  /** Durations of the commits that succeeded (`hashwatch_ingest_commit_duration_seconds`). */
  commitLatency: HistogramSnapshot;
  acksPublished: number;
  ackPublishFailures: number;
  resendsSent: number;
  rebirthsSent: number;
  staleStatesIgnored: number;
  birthsStored: number;
  pendingReports: number;
}

interface BatchItem {
  pending: PendingReport;
  /** Already committed earlier (in-memory dedupe hit): only re-acked. */
  ackOnly: boolean;
  /**
   * A second copy of a report still waiting in this batch: acked only if the batch commits (an
   * ack for it after a failed commit would let the agent drop a report nobody stored).
   */
  dupOfPending: boolean;
  done: () => void;
}

/** A failing commit with the same code is logged at most once per this window. */
const COMMIT_FAILURE_LOG_MS = 10_000;

export class Ingest {
  private readonly options: IngestOptions;
  private readonly store: Store;
  private readonly publish: Publish;
  private readonly log: Logger;
  private readonly now: () => number;
  private batch: BatchItem[] = [];
  private batchSamples = 0;
  private timer: NodeJS.Timeout | undefined;
  /** The batches committing or queued to commit, one after the other; never rejects. */
  private flushTail: Promise<void> = Promise.resolve();
  private flushQueued = false;
  private readonly acksInFlight = new Set<Promise<void>>();
  private running = false;
  private readonly committed: LruSet;
  private readonly inBatch = new Set<string>();
  private readonly sessions = new Map<string, Session>();
  /** Highest live seq seen per host, for the current boot. */
  private readonly liveSeq = new Map<string, { bootId: string; seq: number }>();
  private readonly lastResendMs = new Map<string, number>();
  private readonly lastRebirthMs = new Map<string, number>();
  private readonly lastRejectLogMs = new Map<string, number>();
  private readonly commitFailureLog = new Map<string, { atMs: number; notLogged: number }>();
  private readonly committedListeners: Array<(reports: CommittedReport[]) => void> = [];
  private readonly birthListeners: Array<(site: string, host: string, birth: Birth) => void> = [];
  private readonly presenceListeners: Array<(change: PresenceChange) => void> = [];
  private readonly commitLatency = new LatencyHistogram();
  private readonly counters: Omit<IngestStats, 'pendingReports' | 'commitLatency'> = {
    reportsAccepted: 0,
    reportsStored: 0,
    samplesStored: 0,
    duplicates: 0,
    rejected: {},
    skewed: 0,
    batches: 0,
    commitFailures: {},
    acksPublished: 0,
    ackPublishFailures: 0,
    resendsSent: 0,
    rebirthsSent: 0,
    staleStatesIgnored: 0,
    birthsStored: 0,
  };

  constructor(options: IngestOptions, deps: { store: Store; publish: Publish; log: Logger; now?: () => number }) {
    this.options = options;
    this.store = deps.store;
    this.publish = deps.publish;
    this.log = deps.log;
    this.now = deps.now ?? Date.now;
    this.committed = new LruSet(options.dedupeCacheSize);
  }

  /** Called after each committed batch with the reports it newly stored (the diagnosis seam). */
  onCommitted(listener: (reports: CommittedReport[]) => void): void {
    this.committedListeners.push(listener);
  }

  /** Called after each stored birth. */
  onBirth(listener: (site: string, host: string, birth: Birth) => void): void {
    this.birthListeners.push(listener);
  }

  /** Called when an agent's presence changes (stale Wills are not reported). */
  onPresence(listener: (change: PresenceChange) => void): void {
    this.presenceListeners.push(listener);
  }

  start(): void {
    this.running = true;
  }

  /** Stops accepting messages, commits and acks what is batched. */
  async stop(): Promise<void> {
    this.running = false;
    await this.flush();
  }

  /** Current presence of one agent, as far as this collector knows. */
  session(site: string, host: string): Session | undefined {
    return this.sessions.get(`${site}/${host}`);
  }

  stats(): IngestStats {
    return {
      ...this.counters,
      rejected: { ...this.counters.rejected },
      commitFailures: { ...this.counters.commitFailures },
      commitLatency: this.commitLatency.snapshot(),
      pendingReports: this.batch.length,
    };
  }

  /**
   * Handles one inbound message. Resolves when the message is done with: for a report, after its
   * batch committed and the ack was published, or after the commit failed (no ack: the agent resends).
   * Never rejects.
   */
  handle = (msg: InboundMessage): Promise<void> => {
    try {
      return this.dispatch(msg);
    } catch (err) {
      // a bug here must cost one message, not the process
      this.log.error({ err, topic: msg.topic }, 'Ingest failed on a message');
      return Promise.resolve();
    }
  };

  private dispatch(msg: InboundMessage): Promise<void> {
    if (!this.running) return Promise.resolve();
    const nowMs = this.now();
    const topic = parseTopic(msg.topic);
    if (!topic.ok) {
      this.reject(topic.error.code, msg.username ?? msg.clientId ?? 'unknown', topic.error.message, nowMs);
      return Promise.resolve();
    }
    const { site, host, kind } = topic.value;
    const source = `${site}/${host}`;
    if (kind !== 'birth' && kind !== 'state' && kind !== 'report') {
      this.reject('HW_ERR_BAD_TOPIC', source, `agents may only publish birth, state and report, not ${kind}`, nowMs);
      return Promise.resolve();
    }
    const decoded = decode(kind as AgentTopicKind, msg.payload, nowMs);
    if (!decoded.ok) {
      this.reject(decoded.error.code, source, decoded.error.message, nowMs);
      return Promise.resolve();
    }
    if (kind === 'state') {
      const state = decoded.value as AgentState;
      const apply = () => {
        this.storing(site, host, kind, () => this.handleState(site, host, state, nowMs));
      };
      if (state.status === 'online') {
        apply();
        return Promise.resolve();
      }
      // MQTT hands over an agent's messages in order, but its reports wait for their batch to
      // commit: an offline state (a clean stop, a Will) applied at once reached the diagnosis ahead
      // of the reports sent before it, which then looked like a stopped host coming back.
      return this.flush().then(apply);
    }
    if (kind === 'report') {
      const report = decoded.value as Report;
      return this.storing(site, host, kind, () => this.handleReport(site, host, report, nowMs)) ?? Promise.resolve();
    }
    this.storing(site, host, kind, () => this.handleBirth(site, host, decoded.value as Birth, nowMs));
    return Promise.resolve();
  }

  /** Runs `fn`; a store error costs this message (counted and logged), not the process. */
  private storing<T>(site: string, host: string, kind: string, fn: () => T): T | undefined {
    try {
      return fn();
    } catch (err) {
      const e = toStoreError(err, `handling ${kind}`);
      this.countFailure(e);
      this.log.error({ site, host, code: e.code, err: e.message }, 'Could not store an agent message');
      return undefined;
    }
  }

  private reject(code: string, source: string, message: string, nowMs: number): void {
    this.counters.rejected[code] = (this.counters.rejected[code] ?? 0) + 1;
    const key = `${code}|${source}`;
    const last = this.lastRejectLogMs.get(key);
    if (last !== undefined && nowMs - last < this.options.rejectLogIntervalMs) return;
    this.lastRejectLogMs.set(key, nowMs);
    this.log.warn({ code, source, reason: message }, 'Rejected a message');
  }

  private handleBirth(site: string, host: string, birth: Birth, nowMs: number): void {
    this.store.recordBirth(site, host, birth, nowMs);
    this.counters.birthsStored++;
    this.log.info({ site, host, boot_id: birth.boot_id, rigs: birth.rigs.length }, 'Agent birth');
    this.updatePresence(
      site,
      host,
      { bootId: birth.boot_id, conn: birth.conn, ts: birth.ts, status: 'online', reason: null },
      nowMs,
    );
    for (const l of this.birthListeners) this.safely(() => l(site, host, birth));
  }

  private handleState(site: string, host: string, state: AgentState, nowMs: number): void {
    const ref = this.store.ensureHost(site, host, nowMs);
    this.updatePresence(
      site,
      host,
      { bootId: state.boot_id, conn: state.conn, ts: state.ts, status: state.status, reason: state.reason ?? null },
      nowMs,
    );
    if (state.status === 'online' && !this.store.hasBirth(ref.hostId)) this.requestRebirth(site, host, nowMs);
  }

  private updatePresence(site: string, host: string, next: Session, nowMs: number): void {
    const key = `${site}/${host}`;
    const current = this.sessions.get(key);
    if (isStale(current, next)) {
      this.counters.staleStatesIgnored++;
      this.log.info(
        { site, host, boot_id: next.bootId, conn: next.conn, status: next.status },
        'Ignored a stale agent state',
      );
      return;
    }
    const ref = this.store.ensureHost(site, host, nowMs);
    this.store.recordPresence(
      ref.hostId,
      { boot_id: next.bootId, conn: next.conn, status: next.status, reason: next.reason ?? undefined },
      nowMs,
    );
    this.sessions.set(key, next);
    if (!current || current.status !== next.status || current.bootId !== next.bootId || current.conn !== next.conn) {
      this.log.info(
        { site, host, boot_id: next.bootId, conn: next.conn, status: next.status, reason: next.reason },
        'Agent presence',
      );
      for (const l of this.presenceListeners) this.safely(() => l({ site, host, session: next }));
    }
  }

  private handleReport(site: string, host: string, report: Report, nowMs: number): Promise<void> {
    const ref = this.store.ensureHost(site, host, nowMs);
    const key = `${ref.hostId}/${report.boot_id}/${report.seq}`;
    const historical = report.historical === true;
    const skewMs = historical ? null : nowMs - report.ts;
    const skewed = skewMs !== null && Math.abs(skewMs) > this.options.skewThresholdMs;
    const pending: PendingReport = { site, host, hostId: ref.hostId, report, receivedMs: nowMs, skewMs, skewed };
    const alreadyCommitted = this.committed.has(key);
    const dupOfPending = !alreadyCommitted && this.inBatch.has(key);
    const ackOnly = alreadyCommitted || dupOfPending;
    if (ackOnly) {
      this.counters.duplicates++;
    } else {
      this.counters.reportsAccepted++;
      if (skewed) {
        this.counters.skewed++;
        this.log.warn({ site, host, boot_id: report.boot_id, seq: report.seq, skew_ms: skewMs }, 'Agent clock skew');
      }
      if (!historical) this.checkGap(site, host, report, nowMs);
      if (!this.store.hasBirth(ref.hostId)) this.requestRebirth(site, host, nowMs);
      this.inBatch.add(key);
      this.batchSamples += report.rigs.length;
    }
    return new Promise<void>((resolve) => {
      this.batch.push({ pending, ackOnly, dupOfPending, done: resolve });
      if (this.batchSamples >= this.options.batchMaxSamples) void this.flush();
      else this.timer ??= setTimeout(() => void this.flush(), this.options.batchMaxMs);
    });
  }

  private checkGap(site: string, host: string, report: Report, nowMs: number): void {
    const key = `${site}/${host}`;
    const last = this.liveSeq.get(key);
    if (!last || last.bootId !== report.boot_id) {
      this.liveSeq.set(key, { bootId: report.boot_id, seq: report.seq });
      return;
    }
    if (report.seq > last.seq + 1) {
      const from = last.seq + 1;
      const to = report.seq - 1;
      const lastSent = this.lastResendMs.get(key);
      if (lastSent === undefined || nowMs - lastSent >= this.options.resendMinIntervalMs) {
        this.lastResendMs.set(key, nowMs);
        this.counters.resendsSent++;
        this.log.info(
          { site, host, boot_id: report.boot_id, from_seq: from, to_seq: to },
          'Seq gap: asking for a resend',
        );
        this.sendCommand(site, host, {
          v: 1,
          ts: nowMs,
          cmd: 'resend',
          boot_id: report.boot_id,
          from_seq: from,
          to_seq: to,
        });
      }
    }
    if (report.seq > last.seq) last.seq = report.seq;
  }

  private requestRebirth(site: string, host: string, nowMs: number): void {
    const key = `${site}/${host}`;
    const last = this.lastRebirthMs.get(key);
    if (last !== undefined && nowMs - last < this.options.rebirthMinIntervalMs) return;
    this.lastRebirthMs.set(key, nowMs);
    this.counters.rebirthsSent++;
    this.log.info({ site, host }, 'Unknown agent inventory: asking for a rebirth');
    this.sendCommand(site, host, { v: 1, ts: nowMs, cmd: 'rebirth' });
  }

  private sendCommand(site: string, host: string, cmd: Command): void {
    const payload = encode('cmd', cmd, cmd.ts);
    if (!payload.ok) {
      this.log.error({ site, host, err: payload.error.message }, 'Built an invalid command');
      return;
    }
    this.publish(agentTopic(site, host, 'cmd'), payload.value, { qos: 1, retain: false }).catch((err: Error) => {
      this.log.warn({ site, host, err: err.message }, 'Could not publish a command');
    });
  }

  /**
   * Commits the current batch and publishes its acks; resolves once they are published. Safe to call
   * at any time. Batches commit one at a time: while one is being written (on the writer thread the
   * main thread is free meanwhile), the next one keeps growing, and commits as soon as it ends.
   */
  flush(): Promise<void> {
    if (!this.flushQueued) {
      this.flushQueued = true;
      this.flushTail = this.flushTail
        .then(() => this.commitBatch())
        .catch((err: unknown) => {
          this.log.error({ err }, 'Ingest failed on a batch');
        });
    }
    return this.flushTail.then(() => Promise.all(this.acksInFlight)).then(() => undefined);
  }

  private async commitBatch(): Promise<void> {
    this.flushQueued = false;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const items = this.batch;
    if (items.length === 0) return;
    this.batch = [];
    this.batchSamples = 0;
    const toStore = items.filter((i) => !i.ackOnly);
    const keyOf = (i: BatchItem) => `${i.pending.hostId}/${i.pending.report.boot_id}/${i.pending.report.seq}`;
    // A copy arriving while this batch is written is taken as new: the database's key then tells a
    // duplicate (the commit succeeded) from a report to store (it failed), so nothing is acked unstored.
    for (const i of toStore) this.inBatch.delete(keyOf(i));
    let committedOk = true;
    const stored: CommittedReport[] = [];
    if (toStore.length > 0) {
      const started = performance.now();
      try {
        const result = await this.store.commit(toStore.map((i) => i.pending));
        this.commitLatency.observe((performance.now() - started) / 1000);
        this.counters.batches++;
        this.counters.samplesStored += result.samplesWritten;
        result.outcomes.forEach((outcome, n) => {
          const item = toStore[n] as BatchItem;
          this.committed.add(keyOf(item));
          if (outcome === 'stored') {
            this.counters.reportsStored++;
            stored.push({
              site: item.pending.site,
              host: item.pending.host,
              report: item.pending.report,
              receivedAtMs: item.pending.receivedMs,
            });
          } else {
            this.counters.duplicates++;
          }
        });
      } catch (err) {
        committedOk = false;
        const e = toStoreError(err, 'committing reports');
        this.countFailure(e);
        this.logCommitFailure(e, toStore.length);
      }
    }
    const ackable = committedOk ? items : items.filter((i) => i.ackOnly && !i.dupOfPending);
    // Release the broker's PUBACKs as soon as the commit is decided, before our own acks go out:
    // in external mode mqtt.js stops reading after max_unacked unreleased messages, and the
    // broker's PUBACKs for our acks would then never be read (a deadlock seen under load).
    for (const i of items) i.done();
    const acks = this.publishAcks(ackable);
    this.acksInFlight.add(acks);
    void acks.finally(() => this.acksInFlight.delete(acks));
    // The listeners (the diagnosis writes its rows) run before the next batch is handed to the
    // writer, so the two connections do not wait on each other's write lock.
    if (stored.length > 0) for (const l of this.committedListeners) this.safely(() => l(stored));
    // Group commit: what arrived while this batch was written has already waited one commit, so it
    // goes next instead of waiting out its timer, which paces an idle writer only. Under load
    // batches follow each other and grow with the commit time; a closed loop of agents (each
    // holding a window of unacked reports) otherwise spent most of its latency in the timer. After
    // a failed commit (disk full) the timer still paces the retries.
    if (committedOk && this.batch.length > 0) void this.flush();
  }

  /**
   * A full or broken disk fails every batch until it is fixed: the first failure is logged at
   * once, then one line per code per `COMMIT_FAILURE_LOG_MS` with the failures in between (each is
   * counted in hashwatch_ingest_commit_failures_total), so the log adds little to a full disk.
   */
  private logCommitFailure(e: StoreError, reports: number): void {
    const nowMs = this.now();
    const last = this.commitFailureLog.get(e.code);
    if (last && nowMs - last.atMs < COMMIT_FAILURE_LOG_MS) {
      last.notLogged++;
      return;
    }
    this.commitFailureLog.set(e.code, { atMs: nowMs, notLogged: 0 });
    this.log.error(
      { code: e.code, reports, err: e.message, failures_not_logged: last?.notLogged ?? 0 },
      'Batch commit failed: not acked',
    );
  }

  private countFailure(e: StoreError): void {
    this.counters.commitFailures[e.code] = (this.counters.commitFailures[e.code] ?? 0) + 1;
  }

  private async publishAcks(items: BatchItem[]): Promise<void> {
    const perHost = new Map<string, { site: string; host: string; boots: Map<string, number[]> }>();
    for (const { pending } of items) {
      const key = `${pending.site}/${pending.host}`;
      let entry = perHost.get(key);
      if (!entry) {
        entry = { site: pending.site, host: pending.host, boots: new Map() };
        perHost.set(key, entry);
      }
      const seqs = entry.boots.get(pending.report.boot_id) ?? [];
      seqs.push(pending.report.seq);
      entry.boots.set(pending.report.boot_id, seqs);
    }
    const nowMs = this.now();
    const sends: Promise<void>[] = [];
    for (const { site, host, boots } of perHost.values()) {
      const ack: Ack = {
        v: 1,
        ts: nowMs,
        acks: [...boots].map(([boot_id, seqs]) => ({ boot_id, ranges: toRanges(seqs) })),
      };
      const payload = encode('ack', ack, nowMs);
      if (!payload.ok) {
        this.log.error({ site, host, err: payload.error.message }, 'Built an invalid ack');
        continue;
      }
      sends.push(
        this.publish(agentTopic(site, host, 'ack'), payload.value, { qos: 1, retain: false }).then(
          () => {
            this.counters.acksPublished++;
          },
          (err: Error) => {
            this.counters.ackPublishFailures++;
            this.log.warn({ site, host, err: err.message }, 'Could not publish an ack: the agent will resend');
          },
        ),
      );
    }
    await Promise.all(sends);
  }

  private safely(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.log.error({ err }, 'A listener of ingest failed');
    }
  }
}
