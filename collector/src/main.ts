/**
 * The collector program: wires store → ingest → transport → HTTP/API, the fleet view with the
 * diagnosis runner, /metrics and the live view, in one visible place.
 * Start order: store (open, migrate), ingest, HTTP, then the transport (so nothing arrives before
 * ingest can commit it). Stop order: stop accepting (transport), flush the batch and ack, stop
 * HTTP, close the database.
 */
import type { Logger } from 'pino';
import { registerApi } from './api/routes.js';
import { createTransport, EmbeddedBroker } from './broker/index.js';
import type { Transport } from './broker/transport.js';
import type { CollectorConfig } from './config.js';
import { DIAGNOSIS_RUNNER_DEFAULTS, DiagnosisRunner } from './diagnosis/runner.js';
import { stateFilePath } from './diagnosis/state-file.js';
import { FleetTracker } from './fleet/tracker.js';
import { FleetView } from './fleet/view.js';
import { HttpServer } from './http/server.js';
import { Ingest } from './ingest/ingest.js';
import { createStaticHandler, LiveServer } from './live/index.js';
import { createMetricsHandler, createRuntimeRegistry, type MetricsSources } from './metrics/index.js';
import { runRetentionStep } from './store/retention.js';
import { RetentionPacer } from './store/retention-pacer.js';
import { Store } from './store/store.js';

const DAY_MS = 86_400_000;

export class Collector {
  readonly config: CollectorConfig;
  readonly store: Store;
  readonly ingest: Ingest;
  readonly http: HttpServer;
  readonly transport: Transport;
  /** What the fleet looks like now: read by /metrics and the live view. */
  readonly view = new FleetView();
  readonly diagnosis: DiagnosisRunner;
  readonly live: LiveServer | undefined;
  private readonly log: Logger;
  private readonly now: () => number;
  private checkpointTimer: NodeJS.Timeout | undefined;
  /** A WAL checkpoint is running (on the writer thread, the main thread goes on meanwhile). */
  private checkpointing = false;
  private retentionTimer: NodeJS.Timeout | undefined;
  /** A retention pass is between two of its chunks. */
  private retaining = false;
  /** Sizes retention's chunks by time; kept across runs so each run starts from what it learned. */
  private retentionPacer: RetentionPacer | undefined;
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
      writerThread: config.store.writer_thread,
      onWriterFailure: (err) =>
        this.log.error({ code: err.code, err: err.message }, 'The writer thread failed: its batches are not acked'),
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
    this.diagnosis = new DiagnosisRunner(
      {
        store: this.store,
        view: this.view,
        ingest: this.ingest,
        log: log.child({ component: 'diagnosis' }),
        now: this.now,
      },
      {
        ...DIAGNOSIS_RUNNER_DEFAULTS,
        tickMs: config.diagnosis_runner.tick_ms,
        persistMs: config.diagnosis_runner.persist_ms,
        ...(config.store.path === ':memory:' ? {} : { statePath: stateFilePath(config.store.path) }),
        behindUtilization: config.diagnosis_runner.behind_utilization,
        config: config.diagnosis,
      },
    );
    if (config.live.enabled) {
      this.live = new LiveServer(this.view, {
        // One token guards the API and the live view unless the live view is given its own.
        token: config.live.token || config.http.api_token,
        allowedOrigins: config.live.allowed_origins,
        maxClients: config.live.max_clients,
        summaryIntervalMs: config.live.summary_interval_ms,
        maxBufferedBytes: config.live.max_buffered_bytes,
        now: this.now,
        logger: log.child({ component: 'live' }),
      });
    }
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
      this.registerViews();
      this.routesRegistered = true;
    }
    // The view is fed before the diagnosis so that a state change finds the sample it is about.
    const tracker = new FleetTracker(this.view, this.now);
    this.ingest.onBirth((site, host, birth) => tracker.birth(site, host, birth));
    this.ingest.onPresence((change) => tracker.presence(change));
    this.ingest.onCommitted((reports) => tracker.committed(reports));
    this.diagnosis.start();
    this.ingest.start();
    try {
      await this.http.start();
      this.transport.onMessage(this.ingest.handle);
      await this.transport.start();
    } catch (err) {
      await this.http.stop();
      await this.ingest.stop();
      await this.store.closeWriter();
      this.store.close();
      throw err;
    }
    this.live?.start();
    this.checkpointTimer = setInterval(() => this.housekeeping(), this.config.store.checkpoint_interval_ms);
    this.retentionTimer = setInterval(() => this.retention(), this.config.retention.interval_ms);
    this.started = true;
    this.log.info({ http_port: this.http.port, broker: this.transport.health() }, 'Collector started');
  }

  /**
   * Re-reads what may change without a restart (SIGHUP): the embedded broker's credentials file,
   * so that an agent removed with `remove-agent` is dropped when `watch_credentials` is off or the
   * file watch failed. Other config keys need a restart.
   */
  async reload(): Promise<void> {
    await this.transport.reload();
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
    this.live?.stop();
    await this.http.stop();
    await this.diagnosis.stop();
    await this.store.closeWriter();
    this.store.close();
    this.log.info('Collector stopped');
  }

  /** /metrics, the live view's WebSocket and the page, on the same HTTP server as the API. */
  private registerViews(): void {
    if (this.config.metrics.enabled) {
      const sources: MetricsSources = {
        fleet: this.view,
        ingest: () => {
          const s = this.ingest.stats();
          return {
            acceptedTotal: s.reportsStored,
            rejectedTotalByReason: s.rejected,
            duplicatesTotal: s.duplicates,
            skewedTotal: s.skewed,
            batchesTotal: s.batches,
            commitFailuresTotal: Object.values(s.commitFailures).reduce((a, b) => a + b, 0),
            commitLatency: s.commitLatency,
          };
        },
        broker: () => {
          const h = this.transport.health();
          const t = this.transport;
          return {
            up: h.up,
            mode: h.mode,
            ...(h.clients !== undefined ? { clients: h.clients } : {}),
            ...(t instanceof EmbeddedBroker ? { refusedTotalByReason: t.stats().refusals } : {}),
          };
        },
        store: () => {
          const lastCommitMs = this.store.lastCommitMs;
          return {
            up: this.store.health().ok,
            sizeBytes: this.store.sizeBytes(),
            ...(lastCommitMs !== undefined ? { lastCommitMs } : {}),
          };
        },
        diagnosis: () => ({ behind: this.diagnosis.stats().behind }),
        runtime: createRuntimeRegistry(),
      };
      const metrics = createMetricsHandler(sources, { perRig: this.config.metrics.per_rig, now: this.now });
      this.http.route('GET', '/metrics', (ctx) => {
        metrics(ctx.req, ctx.res);
        return undefined;
      });
    }
    const live = this.live;
    if (live) {
      this.http.onUpgrade(live.path, (req, socket, head) => live.handleUpgrade(req, socket, head));
      const page = createStaticHandler();
      for (const path of ['/', '/index.html', '/app.js', '/app.css']) {
        this.http.route('GET', path, (ctx) => {
          if (!page(ctx.req, ctx.res)) throw new Error(`static file ${path} missing`);
          return undefined;
        });
      }
    }
  }

  /** The latest-sample pointers, then the WAL checkpoint (on the writer thread when there is one). */
  private housekeeping(): void {
    if (this.checkpointing) return; // a slow disk must not queue checkpoints behind each other
    this.checkpointing = true;
    this.store
      .checkpoint()
      .catch((err: unknown) => {
        this.log.warn({ err: (err as Error).message }, 'latest-sample pointers or WAL checkpoint failed; will retry');
      })
      .finally(() => {
        this.checkpointing = false;
      });
  }

  /**
   * One retention pass: up to `max_chunks_per_run` chunks, one per turn of the event loop, so acks,
   * the diagnosis and the views run between them instead of waiting for the whole pass.
   */
  private retention(): void {
    if (this.retaining) return;
    const r = this.config.retention;
    this.retentionPacer ??= new RetentionPacer(r.chunk_target_ms);
    const pacer = this.retentionPacer;
    const options = {
      rawDays: r.raw_days,
      minuteDays: r.minute_days,
      dropAfterDays: r.drop_after_days,
      chunkRows: r.chunk_rows,
    };
    const nowMs = this.now();
    const total = { rawBuckets: 0, minuteRowsFolded: 0, accountingRowsFolded: 0, rowsDropped: 0, done: false };
    let chunks = 0;
    const step = () => {
      if (!this.started) {
        this.retaining = false;
        return;
      }
      try {
        const started = performance.now();
        const p = runRetentionStep(this.store, { ...options, slices: pacer.slices }, nowMs, 1);
        pacer.observe(p.lastPhase, performance.now() - started);
        total.rawBuckets += p.rawBuckets;
        total.minuteRowsFolded += p.minuteRowsFolded;
        total.accountingRowsFolded += p.accountingRowsFolded;
        total.rowsDropped += p.rowsDropped;
        total.done = p.done;
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'Retention pass failed; will retry');
        total.done = true;
      }
      if (!total.done && ++chunks < r.max_chunks_per_run) {
        setImmediate(step);
        return;
      }
      this.retaining = false;
      if (total.rawBuckets + total.minuteRowsFolded + total.accountingRowsFolded + total.rowsDropped > 0) {
        this.log.info({ ...total }, 'Retention pass');
      }
    };
    this.retaining = true;
    step();
  }
}
