/**
 * The agent's own `/metrics` on an optional port: its spool, publishing and polling figures plus
 * process metrics, readable by a Prometheus inside the farm even while the uplink to the collector
 * is down. Names match the collector's `hashwatch_agent_*` families (same meaning, same name); a
 * Prometheus scraping both tells them apart by `job`. No prom-client: a dozen lines of text.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';
import type { AgentStats } from '@hashwatch/protocol';

/** What the agent program hands over per scrape: the report's AgentStats plus live publisher state. */
export interface AgentMetricsStats extends AgentStats {
  site: string;
  host: string;
  /** Connected to the MQTT broker right now. */
  brokerConnected?: boolean;
  /** The collector's retained state says online (undefined until heard). */
  collectorOnline?: boolean;
  /** Reports published since start, live and replayed from the spool. */
  reportsSentLiveTotal?: number;
  reportsSentReplayTotal?: number;
  /** `…/ack` messages received since start. */
  acksReceivedTotal?: number;
}

export interface AgentMetricsServerOptions {
  /** Listen address (config `metrics.host`); keep 127.0.0.1 unless a farm Prometheus scrapes it. */
  host: string;
  /** Listen port (config `metrics.port`); 0 = any free port (tests). */
  port: number;
  /** Called once per scrape; a throw answers 500 and is reported through `onError`. */
  getStats: () => AgentMetricsStats;
  /** Agent clock, for ages; injectable for tests. */
  now?: () => number;
  onError?: (err: unknown) => void;
}

export interface AgentMetricsServer {
  /** The bound port (useful with port 0). */
  port: number;
  /** Closes the listener and open connections and stops the event-loop monitor. Idempotent. */
  stop(): Promise<void>;
}

export const AGENT_METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function fmt(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Number.POSITIVE_INFINITY) return '+Inf';
  if (value === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(value);
}

/** Collects one family at a time: HELP, TYPE, samples. Families with no samples are left out. */
class Page {
  private readonly out: string[] = [];

  family(name: string, type: 'gauge' | 'counter', help: string, samples: [labels: string, value: number][]): void {
    if (samples.length === 0) return;
    this.out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of samples) this.out.push(`${name}${labels === '' ? '' : `{${labels}}`} ${fmt(value)}`);
  }

  text(): string {
    return `${this.out.join('\n')}\n`;
  }
}

const one = (labels: string, value: number | undefined): [string, number][] =>
  value === undefined ? [] : [[labels, value]];
const bool = (v: boolean | undefined) => (v === undefined ? undefined : v ? 1 : 0);

/** Renders the agent page; pure apart from reading the process's own CPU and memory. */
export function renderAgentMetrics(stats: AgentMetricsStats, nowMs: number, eventLoop?: IntervalHistogram): string {
  const p = new Page();
  const base = `site="${escapeLabelValue(stats.site)}",host="${escapeLabelValue(stats.host)}"`;
  p.family('hashwatch_agent_spool_depth', 'gauge', 'Reports in the spool not yet acknowledged by the collector.', [
    [base, stats.spool_depth],
  ]);
  p.family('hashwatch_agent_spool_bytes', 'gauge', 'Size of the spool.', [[base, stats.spool_bytes]]);
  p.family(
    'hashwatch_agent_spool_oldest_age_seconds',
    'gauge',
    'Age of the oldest unacknowledged report in the spool (0 when empty).',
    [[base, stats.spool_oldest_ts === undefined ? 0 : Math.max(0, (nowMs - stats.spool_oldest_ts) / 1000)]],
  );
  p.family(
    'hashwatch_agent_spool_dropped_total',
    'counter',
    'Reports dropped from the spool (full, too old): data lost for good.',
    [[base, stats.spool_dropped_total]],
  );
  p.family(
    'hashwatch_agent_publish_latency_seconds',
    'gauge',
    'Latency from report to collector acknowledgement of the latest acknowledged report.',
    one(base, stats.publish_latency_ms === undefined ? undefined : stats.publish_latency_ms / 1000),
  );
  p.family('hashwatch_agent_poll_duration_seconds', 'gauge', 'Duration of the last poll round over all rigs.', [
    [base, stats.poll_duration_ms / 1000],
  ]);
  p.family(
    'hashwatch_agent_errors_total',
    'counter',
    'Errors the agent counted, by kind.',
    Object.keys(stats.errors)
      .sort()
      .map((kind) => [`${base},kind="${escapeLabelValue(kind)}"`, stats.errors[kind] ?? 0]),
  );
  p.family(
    'hashwatch_agent_broker_connected',
    'gauge',
    'Connected to the MQTT broker (1) or not (0).',
    one(base, bool(stats.brokerConnected)),
  );
  p.family(
    'hashwatch_agent_collector_online',
    'gauge',
    'The collector announces itself online on the broker (1) or not (0).',
    one(base, bool(stats.collectorOnline)),
  );
  p.family('hashwatch_agent_reports_sent_total', 'counter', 'Reports published, live or replayed from the spool.', [
    ...one(`${base},mode="live"`, stats.reportsSentLiveTotal),
    ...one(`${base},mode="replay"`, stats.reportsSentReplayTotal),
  ]);
  p.family(
    'hashwatch_agent_acks_received_total',
    'counter',
    'Acknowledgements received from the collector.',
    one(base, stats.acksReceivedTotal),
  );

  const cpu = process.cpuUsage();
  const mem = process.memoryUsage();
  p.family('process_cpu_user_seconds_total', 'counter', 'User CPU time spent in seconds.', [['', cpu.user / 1e6]]);
  p.family('process_cpu_system_seconds_total', 'counter', 'System CPU time spent in seconds.', [
    ['', cpu.system / 1e6],
  ]);
  p.family('process_cpu_seconds_total', 'counter', 'Total user and system CPU time spent in seconds.', [
    ['', (cpu.user + cpu.system) / 1e6],
  ]);
  p.family('process_resident_memory_bytes', 'gauge', 'Resident memory size in bytes.', [['', mem.rss]]);
  p.family('process_start_time_seconds', 'gauge', 'Start time of the process since unix epoch in seconds.', [
    ['', Math.round((Date.now() - process.uptime() * 1000) / 1000)],
  ]);
  p.family('nodejs_heap_size_total_bytes', 'gauge', 'Process heap size from Node.js in bytes.', [['', mem.heapTotal]]);
  p.family('nodejs_heap_size_used_bytes', 'gauge', 'Process heap size used from Node.js in bytes.', [
    ['', mem.heapUsed],
  ]);
  p.family('nodejs_external_memory_bytes', 'gauge', 'Node.js external memory size in bytes.', [['', mem.external]]);
  if (eventLoop && eventLoop.count > 0) {
    p.family('nodejs_eventloop_lag_p99_seconds', 'gauge', 'The 99th percentile of the recorded event loop delays.', [
      ['', eventLoop.percentile(99) / 1e9],
    ]);
    p.family('nodejs_eventloop_lag_max_seconds', 'gauge', 'The maximum recorded event loop delay.', [
      ['', eventLoop.max / 1e9],
    ]);
  }
  return p.text();
}

/** Starts the agent's `/metrics` listener; resolves once it is bound, rejects if it cannot bind. */
export async function startAgentMetricsServer(options: AgentMetricsServerOptions): Promise<AgentMetricsServer> {
  const now = options.now ?? Date.now;
  const eventLoop = monitorEventLoopDelay({ resolution: 20 });
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('Not found: the agent serves only /metrics\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' });
      res.end('Method not allowed: use GET\n');
      return;
    }
    let body: string;
    try {
      body = renderAgentMetrics(options.getStats(), now(), eventLoop);
    } catch (err) {
      options.onError?.(err);
      res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`Reading agent stats failed: ${err instanceof Error ? err.message : String(err)}\n`);
      return;
    }
    res.writeHead(200, {
      'content-type': AGENT_METRICS_CONTENT_TYPE,
      'content-length': String(Buffer.byteLength(body)),
      'cache-control': 'no-store',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
  const server = createServer(handler);
  // A scrape is tiny: do not let a slow client hold a socket open.
  server.requestTimeout = 10_000;
  server.headersTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.listen(options.port, options.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  eventLoop.enable();
  let stopped: Promise<void> | undefined;
  return {
    port: (server.address() as AddressInfo).port,
    stop() {
      stopped ??= new Promise<void>((resolve) => {
        eventLoop.disable();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return stopped;
    },
  };
}
