/**
 * Backfill after an outage: H real agents (the agent's Agent, Spool and Publisher classes, in this
 * process; only the poll round is injected) each return with a spool of `spooledReports` reports
 * from before the outage and replay them as `historical` at `replay.rate_per_s`, while a live
 * report per interval keeps flowing. Measured: time until every spooled report is acked, and the
 * live report → ack latency meanwhile.
 *
 * The spool files are made by the real Spool class (schema, boot bookkeeping); their rows are then
 * bulk-inserted in one transaction (exactly the rows `Spool.append` writes, deflated by the same
 * `packPayload`), because 8640 single fsync'd appends per host would make building the fixture
 * slower than the benchmark. The template's rigs are identical but for their ids, so these
 * spools deflate better than a real farm's (see agent/test/spool-capacity.test.ts for that).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Ack, RigSample } from '@hashwatch/protocol';
import Database from 'better-sqlite3';
import { Agent, type PollFn } from '../../../agent/src/agent.js';
import { parseConfig } from '../../../agent/src/config.js';
import { silentLogger } from '../../../agent/src/log.js';
import { packPayload, Spool } from '../../../agent/src/spool.js';
import { ReportTemplate, rigId } from '../../fleet/payload.js';
import { CollectorProc } from '../collector-proc.js';
import { percentile, sleep } from '../proc.js';

export interface BackfillOptions {
  hosts: number;
  rigsPerHost: number;
  spooledReports: number;
  intervalMs: number;
  replayRatePerS: number;
  maxInflight: number;
  timeoutMs: number;
}

export interface BackfillResult extends BackfillOptions {
  spoolBytesPerHost: number;
  buildS: number;
  replayS: number;
  liveReports: number;
  liveP50Ms: number;
  liveP99Ms: number;
  liveMaxMs: number;
}

function buildSpool(dir: string, shape: RigSample, o: BackfillOptions, oldBoot: string, endMs: number): number {
  const spool = new Spool({
    dir,
    maxBytes: 64 * 1024 ** 3,
    maxAgeMs: 7 * 86_400_000,
    memoryMaxReports: 0,
    log: silentLogger(),
  });
  spool.open(oldBoot, endMs);
  const path = spool.path;
  spool.close();
  const template = new ReportTemplate(shape, o.rigsPerHost, oldBoot, o.intervalMs);
  const db = new Database(path);
  db.pragma('synchronous = OFF');
  const insert = db.prepare(
    'INSERT INTO spool (boot_id, seq, ts, size, payload, sent_ms) VALUES (?, ?, ?, ?, ?, NULL)',
  );
  let bytes = 0;
  db.transaction(() => {
    for (let seq = 0; seq < o.spooledReports; seq++) {
      const ts = endMs - (o.spooledReports - seq) * o.intervalMs;
      const stored = packPayload(template.render(seq, ts));
      bytes += stored.byteLength;
      insert.run(oldBoot, seq, ts, stored.byteLength, stored);
    }
  })();
  db.close();
  return bytes;
}

export async function benchBackfill(shape: RigSample, o: BackfillOptions, log: (s: string) => void) {
  const collector = new CollectorProc();
  const root = mkdtempSync(join(tmpdir(), 'hw-bench-backfill-'));
  const agents: Agent[] = [];
  try {
    await collector.start();
    const t0 = performance.now();
    const endMs = Date.now();
    let spoolBytes = 0;
    const oldBoots: string[] = [];
    for (let h = 0; h < o.hosts; h++) {
      const oldBoot = `old-boot-${h}-${endMs.toString(36)}`;
      oldBoots.push(oldBoot);
      spoolBytes = buildSpool(join(root, `h${h}`), shape, o, oldBoot, endMs);
    }
    const buildS = (performance.now() - t0) / 1000;
    log(
      `backfill: built ${o.hosts} spools of ${o.spooledReports} reports (${(spoolBytes / 1e6).toFixed(0)} MB each) in ${buildS.toFixed(0)} s`,
    );

    const live = new ReportTemplate(shape, o.rigsPerHost, 'unused-boot', o.intervalMs);
    const liveSample = (JSON.parse(live.render(0, Date.now())) as { rigs: RigSample[] }).rigs;
    const latencies: number[] = [];
    const ackedOld = oldBoots.map(() => new Uint8Array(o.spooledReports));
    const ackedOldCount = oldBoots.map(() => 0);
    const replayStart = performance.now();
    for (let h = 0; h < o.hosts; h++) {
      const roundStart: number[] = [];
      const poll: PollFn = async (_rigs, _probes, options) => {
        roundStart.push(performance.now());
        const now = options.now();
        return {
          rigs: liveSample.map((s, i) => ({ ...s, rig: rigId(i), ts: now })),
          probes: [],
          durationMs: 1,
          errors: {},
        };
      };
      const config = parseConfig(
        {
          site: 'backfill',
          host: `h${h}`,
          interval_ms: o.intervalMs,
          data_dir: join(root, `h${h}`),
          broker: { url: collector.mqttUrl },
          spool: { max_bytes: 64 * 1024 ** 3 },
          replay: { rate_per_s: o.replayRatePerS, max_inflight: o.maxInflight },
          log: { level: 'silent' },
        },
        'bench',
      );
      const agent = new Agent({ config, log: silentLogger(), poll });
      agents.push(agent);
      agent.start();
      const oldBoot = oldBoots[h] as string;
      agent.publisher.on('ack', (ack: Ack) => {
        const t = performance.now();
        for (const entry of ack.acks) {
          for (const [from, to] of entry.ranges) {
            for (let seq = from; seq <= to; seq++) {
              if (entry.boot_id === oldBoot) {
                const seen = ackedOld[h] as Uint8Array;
                if (seq < seen.length && seen[seq] === 0) {
                  seen[seq] = 1;
                  ackedOldCount[h] = (ackedOldCount[h] ?? 0) + 1;
                }
              } else if (entry.boot_id === agent.bootId) {
                const started = roundStart[seq];
                if (started !== undefined) {
                  latencies.push(t - started);
                  roundStart[seq] = Number.NaN;
                }
              }
            }
          }
        }
      });
    }
    const total = o.hosts * o.spooledReports;
    const deadline = performance.now() + o.timeoutMs;
    let lastLog = performance.now();
    for (;;) {
      const done = ackedOldCount.reduce((a, b) => a + b, 0);
      if (done >= total) break;
      if (performance.now() > deadline) {
        throw new Error(`backfill: only ${done}/${total} spooled reports acked within ${o.timeoutMs} ms`);
      }
      if (performance.now() - lastLog > 30_000) {
        lastLog = performance.now();
        log(`backfill: ${done}/${total} acked`);
      }
      await sleep(200);
    }
    const replayS = (performance.now() - replayStart) / 1000;
    const valid = latencies.filter((l) => Number.isFinite(l));
    const result: BackfillResult = {
      ...o,
      spoolBytesPerHost: spoolBytes,
      buildS,
      replayS,
      liveReports: valid.length,
      liveP50Ms: percentile(valid, 50),
      liveP99Ms: percentile(valid, 99),
      liveMaxMs: percentile(valid, 100),
    };
    log(
      `backfill: replayed in ${replayS.toFixed(0)} s, live p99 ${Math.round(result.liveP99Ms)} ms over ${valid.length} reports`,
    );
    return result;
  } catch (err) {
    throw new Error(`${(err as Error).message}\ncollector output:\n${collector.output()}`);
  } finally {
    await Promise.all(agents.map((a) => a.stop()));
    await collector.dispose();
    rmSync(root, { recursive: true, force: true });
  }
}
