import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decode, exampleRigSample, LIMITS } from '@hashwatch/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { Agent, type PollFn, splitSamples } from './agent.js';
import { parseConfig } from './config.js';
import { silentLogger } from './log.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

/** A loopback port nothing listens on: the agent spools and retries, as with a broker down. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const address = server.address();
  await new Promise((r) => server.close(r));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

async function offlineAgent(poll: PollFn): Promise<Agent> {
  const dir = mkdtempSync(join(tmpdir(), 'hw-agent-unit-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const config = parseConfig(
    {
      site: 'farm-a',
      host: 'host-1',
      data_dir: dir,
      broker: { url: `mqtt://127.0.0.1:${await closedPort()}`, reconnect_min_ms: 100, reconnect_max_ms: 200 },
      log: { level: 'silent' },
    },
    'test',
  );
  const agent = new Agent({ config, log: silentLogger(), poll });
  cleanups.push(() => agent.stop());
  agent.start({ schedule: false });
  return agent;
}

const probe = (ts: number) => ({
  target: 'gw',
  kind: 'gateway' as const,
  role: 'gateway' as const,
  ok: true,
  attempts: 1,
  loss_ratio: 0,
  ts,
});

describe('Agent', () => {
  it('splits a poll of more than 1000 rigs into several valid reports with consecutive seqs', async () => {
    const agent = await offlineAgent(async (_r, _p, o) => ({
      rigs: Array.from({ length: 2500 }, (_, i) => exampleRigSample(o.now(), `rig-${i}`)),
      probes: [probe(o.now())],
      durationMs: 1,
      errors: { poll_timeout: 2 },
    }));
    const out = await agent.runRound();
    expect(out).toEqual({ kind: 'done', seqs: [0, 1, 2] });
    const rows = agent.spool.nextBatch(10, Number.MAX_SAFE_INTEGER);
    const reports = rows.map((r) => {
      const res = decode('report', r.payload, Date.now());
      if (!res.ok) throw new Error(res.error.message);
      return res.value;
    });
    expect(reports.map((r) => r.rigs.length)).toEqual([1000, 1000, 500]);
    expect(reports.map((r) => r.probes.length)).toEqual([1, 0, 0]);
    expect(new Set(reports.flatMap((r) => r.rigs.map((s) => s.rig))).size).toBe(2500);
    expect(reports[0]?.agent?.errors['poll_timeout']).toBe(2);
  });

  it('splits a report of fewer than 1000 rigs that would exceed the payload limit, without losing a seq', async () => {
    // 800 rigs with a 512-character pool URL each: about 1.2 MB as one report, over the 1 MiB limit.
    const url = `stratum+tcp://${'p'.repeat(480)}.example.org:3333`.slice(0, 512);
    const agent = await offlineAgent(async (_r, _p, o) => ({
      rigs: Array.from({ length: 800 }, (_, i) => {
        const s = exampleRigSample(o.now(), `rig-${i}`);
        return { ...s, pools: (s.pools ?? []).map((p) => ({ ...p, url })) };
      }),
      probes: [probe(o.now())],
      durationMs: 1,
      errors: {},
    }));
    const out = await agent.runRound();
    if (out.kind !== 'done') throw new Error(JSON.stringify(out));
    expect(out.seqs.length).toBeGreaterThan(1);
    expect(out.seqs).toEqual(out.seqs.map((_, i) => i));
    const rows = agent.spool.nextBatch(10, Number.MAX_SAFE_INTEGER);
    expect(rows.map((r) => r.seq)).toEqual(out.seqs);
    for (const r of rows) expect(r.size).toBeLessThanOrEqual(LIMITS.maxPayloadBytes);
    const rigs = rows.flatMap((r) => {
      const res = decode('report', r.payload, Date.now());
      if (!res.ok) throw new Error(res.error.message);
      return res.value.rigs.map((x) => x.rig);
    });
    expect(new Set(rigs).size).toBe(800);
  });

  it('keeps byte-heavy reports under the payload limit', () => {
    const big = Array.from({ length: 900 }, (_, i) => ({ ...exampleRigSample(1e12, `rig-${i}`), flags: ['x'] }));
    const chunks = splitSamples(big, 1000, 200_000);
    expect(chunks.length).toBeGreaterThan(1);
    for (const c of chunks) expect(Buffer.byteLength(JSON.stringify(c))).toBeLessThanOrEqual(200_000 + c.length);
    expect(chunks.flat()).toHaveLength(900);
    expect(splitSamples([], 1000, 1000)).toEqual([[]]);
  });

  it('does not send an invalid report: counts it and does not use up the seq', async () => {
    let broken = true;
    const agent = await offlineAgent(async (_r, _p, o) => ({
      // The same rig twice is a protocol violation.
      rigs: broken ? [exampleRigSample(o.now(), 'r1'), exampleRigSample(o.now(), 'r1')] : [],
      probes: [],
      durationMs: 1,
      errors: {},
    }));
    expect(await agent.runRound()).toEqual({ kind: 'done', seqs: [] });
    expect(agent.stats().counts['report_invalid']).toBe(1);
    expect(agent.spool.depth()).toBe(0);
    broken = false;
    expect(await agent.runRound()).toEqual({ kind: 'done', seqs: [0] });
    const [row] = agent.spool.nextBatch(1, Number.MAX_SAFE_INTEGER);
    expect(JSON.parse(row?.payload ?? '{}').agent.errors).toEqual({ report_invalid: 1 });
  });

  it('never overlaps rounds: a tick during a slow round is skipped and counted', async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const agent = await offlineAgent(async () => {
      await gate;
      return { rigs: [], probes: [], durationMs: 1, errors: {} };
    });
    const first = agent.runRound();
    expect(await agent.runRound()).toEqual({ kind: 'skipped' });
    expect(agent.stats().counts['poll_skipped']).toBe(1);
    release();
    expect(await first).toEqual({ kind: 'done', seqs: [0] });
    expect(await agent.runRound()).toEqual({ kind: 'done', seqs: [1] });
  });

  it('survives a poll round that throws', async () => {
    const agent = await offlineAgent(async () => {
      throw new Error('reader exploded');
    });
    expect(await agent.runRound()).toEqual({ kind: 'failed', error: 'reader exploded' });
    expect(agent.stats().counts['poll_failed']).toBe(1);
    expect(agent.metricsStats()).toMatchObject({
      site: 'farm-a',
      host: 'host-1',
      brokerConnected: false,
      spool_depth: 0,
      errors: { poll_failed: 1 },
    });
  });
});
