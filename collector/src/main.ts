/**
 * The collector program: wires store → ingest → transport → HTTP/API, in one visible place.
 * Start order: store (open, migrate), ingest, HTTP, then the transport (so nothing arrives before
 * ingest can commit it). Stop order: stop accepting (transport), flush the batch and ack, stop
 * HTTP, close the database.
 */
import type { Logger } from 'pino';
import { registerApi } from './api/routes.js';
import { createTransport } from './broker/index.js';
import type { Transport } from './broker/transport.js';
import type { CollectorConfig } from './config.js';
import { HttpServer } from './http/server.js';
import { Ingest } from './ingest/ingest.js';
import { runRetentionStep } from './store/retention.js';
import { Store } from './store/store.js';

const DAY_MS = 86_400_000;

export class Collector {
  readonly config: CollectorConfig;
  readonly store: Store;
  readonly ingest: Ingest;
  readonly http: HttpServer;
  readonly transport: Transport;
  private readonly log: Logger;
  private readonly now: () => number;
  private checkpointTimer: NodeJS.Timeout | undefined;
  private retentionTimer: NodeJS.Timeout | undefined;
  private started = false;
  private routesRegistered = false;

  /** `transport` replaces the configured broker (tests); `now` replaces the clock. */
  constructor(config: CollectorConfig, log: Logger, deps: { transport?: Transport; now?: () => number } = {}) {
    this.config = config;
    this.log = log;
    this.now = deps.now ?? Date.now;
    this.store = new Store({
      path: config.store.path,
      busyTimeoutMs: config.store.busy_timeout_ms,
      cacheSizeMiB: config.store.cache_size_mib,
      checkpointPages: config.store.checkpoint_pages,
    });
    this.transport =
      deps.transport ??
      createTransport(config.broker, log, { dataDir: config.data_dir, collectorId: config.collector_id });
    const i = config.ingest;
    this.ingest = new Ingest(
      {
        batchMaxMs: i.batch_max_ms,
        batchMaxSamples: i.batch_max_samples,
        skewThresholdMs: i.skew_threshold_ms,
        dedupeCacheSize: i.dedupe_cache_size,
        resendMinIntervalMs: i.resend_min_interval_ms,
        rebirthMinIntervalMs: i.rebirth_min_interval_ms,
        rejectLogIntervalMs: i.reject_log_interval_ms,
      },
      {
        store: this.store,
        publish: (topic, payload, options) => this.transport.publish(topic, payload, options),
        log: log.child({ component: 'ingest' }),
        now: this.now,
      },
    );
    this.http = new HttpServer(
      {
        host: config.http.host,
        port: config.http.port,
        apiToken: config.http.api_token,
        maxBodyBytes: config.http.max_body_bytes,
      },
      log.child({ component: 'http' }),
    );
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.store.open();
    this.log.info({ path: this.config.store.path }, 'Store open');
    if (!this.routesRegistered) {
      registerApi(
        this.http,
        { maxSpanMs: this.config.api.max_span_days * DAY_MS, maxRows: this.config.api.max_rows },
        { store: this.store, transportHealth: () => this.transport.health(), now: this.now },
      );
      this.routesRegistered = true;
    }
    this.ingest.start();
    try {
      await this.http.start();
      this.transport.onMessage(this.ingest.handle);
      await this.transport.start();
    } catch (err) {
      await this.http.stop();
      await this.ingest.stop();
      this.store.close();
      throw err;
    }
    this.checkpointTimer = setInterval(() => this.housekeeping(), this.config.store.checkpoint_interval_ms);
    this.retentionTimer = setInterval(() => this.retention(), this.config.retention.interval_ms);
    this.started = true;
    this.log.info({ http_port: this.http.port, broker: this.transport.health() }, 'Collector started');
  }

  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    clearInterval(this.checkpointTimer);
    clearInterval(this.retentionTimer);
    // Stop accepting first, then commit and ack what is batched while the transport can still
    // publish acks: ingest.stop() before transport.stop() would drop messages that arrive meanwhile.
    const pending = this.ingest.stop();
    await pending;
    await this.transport.stop();
    await this.http.stop();
    this.store.close();
    this.log.info('Collector stopped');
  }

  private housekeeping(): void {
    try {
      this.store.flushLatest();
      this.store.maybeCheckpoint();
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'WAL checkpoint failed; will retry');
    }
  }

  private retention(): void {
    const r = this.config.retention;
    try {
      const progress = runRetentionStep(
        this.store,
        { rawDays: r.raw_days, minuteDays: r.minute_days, dropAfterDays: r.drop_after_days, chunkRows: r.chunk_rows },
        this.now(),
        r.max_chunks_per_run,
      );
      if (progress.rawBuckets + progress.minuteRowsFolded + progress.rowsDropped > 0) {
        this.log.info({ ...progress }, 'Retention pass');
      }
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'Retention pass failed; will retry');
    }
  }
}
