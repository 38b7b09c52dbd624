import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { runPromtool } from '../../test/helpers/promtool.js';
import { type AgentMetricsServer, type AgentMetricsStats, startAgentMetricsServer } from './metrics-server.js';

const NOW_MS = Date.UTC(2026, 0, 15, 12);

const stats = (): AgentMetricsStats => ({
  site: 'north',
  host: 'h1',
  spool_depth: 12,
  spool_bytes: 24_576,
  spool_oldest_ts: NOW_MS - 90_000,
  spool_dropped_total: 2,
  publish_latency_ms: 40,
  poll_duration_ms: 850,
  errors: { spool_disk_full: 1, poll_timeout: 7 },
  brokerConnected: true,
  collectorOnline: false,
  reportsSentLiveTotal: 100,
  reportsSentReplayTotal: 12,
  acksReceivedTotal: 95,
});

const servers: AgentMetricsServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.stop();
});

async function start(getStats: () => AgentMetricsStats, onError?: (err: unknown) => void) {
  const server = await startAgentMetricsServer({ host: '127.0.0.1', port: 0, getStats, now: () => NOW_MS, onError });
  servers.push(server);
  return server;
}

function get(
  port: number,
  path = '/metrics',
  method = 'GET',
): Promise<{ status: number; type?: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], body }));
    });
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end();
  });
}

describe('agent /metrics server', () => {
  it('serves the agent stats and process metrics, clean under promtool', async () => {
    const server = await start(stats);
    expect(server.port).toBeGreaterThan(0);
    const res = await get(server.port);
    expect(res.status).toBe(200);
    expect(res.type).toBe('text/plain; version=0.0.4; charset=utf-8');
    const lines = res.body.split('\n');
    expect(lines).toContain('hashwatch_agent_spool_depth{site="north",host="h1"} 12');
    expect(lines).toContain('hashwatch_agent_spool_oldest_age_seconds{site="north",host="h1"} 90');
    expect(lines).toContain('hashwatch_agent_publish_latency_seconds{site="north",host="h1"} 0.04');
    expect(lines).toContain('hashwatch_agent_errors_total{site="north",host="h1",kind="poll_timeout"} 7');
    expect(lines).toContain('hashwatch_agent_broker_connected{site="north",host="h1"} 1');
    expect(lines).toContain('hashwatch_agent_collector_online{site="north",host="h1"} 0');
    expect(lines).toContain('hashwatch_agent_reports_sent_total{site="north",host="h1",mode="replay"} 12');
    expect(res.body).toMatch(/^process_resident_memory_bytes \d+$/m);
    const check = runPromtool(['check', 'metrics'], { stdin: res.body });
    expect({ status: check.status, out: `${check.stdout}${check.stderr}`.trim() }).toEqual({ status: 0, out: '' });
  });

  it('reports an empty spool as age 0 and leaves out what it does not know', async () => {
    const server = await start(() => ({
      site: 'north',
      host: 'h1',
      spool_depth: 0,
      spool_bytes: 0,
      spool_dropped_total: 0,
      poll_duration_ms: 10,
      errors: {},
    }));
    const body = (await get(server.port)).body;
    expect(body).toContain('hashwatch_agent_spool_oldest_age_seconds{site="north",host="h1"} 0');
    expect(body).not.toContain('hashwatch_agent_publish_latency_seconds');
    expect(body).not.toContain('hashwatch_agent_errors_total');
    expect(body).not.toContain('hashwatch_agent_broker_connected');
  });

  it('answers 404 elsewhere, 405 for other methods, 500 when stats fail', async () => {
    const errors: unknown[] = [];
    let fail = false;
    const server = await start(
      () => {
        if (fail) throw new Error('spool closed');
        return stats();
      },
      (e) => errors.push(e),
    );
    expect((await get(server.port, '/')).status).toBe(404);
    expect((await get(server.port, '/metrics', 'POST')).status).toBe(405);
    fail = true;
    const res = await get(server.port);
    expect(res.status).toBe(500);
    expect(res.body).toContain('spool closed');
    expect(errors).toHaveLength(1);
  });

  it('stop() closes the port and is idempotent; a taken port is an error', async () => {
    const server = await start(stats);
    await expect(startAgentMetricsServer({ host: '127.0.0.1', port: server.port, getStats: stats })).rejects.toThrow(
      /EADDRINUSE/,
    );
    await Promise.all([server.stop(), server.stop()]);
    await expect(get(server.port)).rejects.toThrow(/ECONNREFUSED/);
  });
});
