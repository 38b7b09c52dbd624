/**
 * 100k hostile payloads at the ingest path through the collector's real embedded broker (QoS 0
 * and 1 mixed, batched), then: the process is alive, every payload is accounted for in /metrics
 * (accepted, duplicate, or rejected with a reason code), and RSS did not keep growing.
 * Needs `npx tsc -b` first.
 */
import { agentTopic } from '@hashwatch/protocol';
import mqtt from 'mqtt';
import { afterAll, expect, it } from 'vitest';
import { flush, record } from '../fault/results.js';
import { Fuzzer, type FuzzKind } from '../helpers/fuzz.js';
import { cleanupAll, sleep, waitFor } from '../helpers/proc.js';
import { startCollector } from '../helpers/stack.js';
import { byLabel, scrape, sum } from './metrics.js';

const TOTAL = 100_000;
const WARMUP = 10_000;
const BATCH = 500;
/**
 * RSS growth allowed between the end of warm-up and the end of the run, not counting V8's young
 * generation. The collector lets that grow to 64 MB semi-spaces (cli.ts) and under this load it
 * does, by 60-150 MB of RSS that is reserved, not leaked, and a bound on plain RSS growth flaked.
 * Measured here besides it: 17-48 MB with the test alone (three runs), 112 MB once while the rest
 * of `npm test` loaded the machine (old-generation garbage and allocator pages not yet returned);
 * with a 1.5 kB Buffer kept per payload (a deliberate leak, 135 MB over the 90k payloads after
 * warm-up), 230 MB. The bound sits between: it catches a leak of that size, not a small one.
 */
const MAX_RSS_GROWTH_KB = 170 * 1024;

/** The young generation's committed size (new space and its large-object space), in kB. */
function youngKb(m: Map<string, number>): number {
  return (
    ((m.get('nodejs_heap_space_size_total_bytes{space="new"}') ?? Number.NaN) +
      (m.get('nodejs_heap_space_size_total_bytes{space="new_large_object"}') ?? Number.NaN)) /
    1024
  );
}

afterAll(async () => {
  flush('security-fuzz');
  await cleanupAll();
}, 30_000);

function accounted(m: Map<string, number>): number {
  return (
    sum(m, 'hashwatch_ingest_reports_accepted_total') +
    sum(m, 'hashwatch_ingest_reports_duplicate_total') +
    sum(m, 'hashwatch_ingest_messages_rejected_total')
  );
}

it(`survives ${TOTAL} fuzzed payloads and accounts for each`, async () => {
  const collector = await startCollector({
    name: 'fuzz',
    // A short reject-log window would flood the log; the default keeps it to one line per reason and host.
    extra: { ingest: { dedupe_cache_size: 20_000 } },
  });
  const client = await mqtt.connectAsync(collector.mqttUrl, { reconnectPeriod: 0, connectTimeout: 5000 });
  const kinds: Partial<Record<FuzzKind, number>> = {};
  let rssWarmKb = 0;
  let youngWarmKb = 0;
  let rssPeakKb = 0;
  const closes: number[] = [];
  client.on('close', () => closes.push(Date.now()));
  try {
    const before = accounted(await scrape(collector));
    const fuzzer = new Fuzzer(20_260_601, Date.now());
    const started = Date.now();
    let publishError: string | undefined;
    const lastKinds: string[] = [];
    for (let sent = 0; sent < TOTAL && publishError === undefined; sent += BATCH) {
      const pending: Promise<void>[] = [];
      for (let i = sent; i < Math.min(TOTAL, sent + BATCH); i++) {
        const c = fuzzer.next();
        kinds[c.kind] = (kinds[c.kind] ?? 0) + 1;
        lastKinds.push(`${i}:${c.kind}:${c.payload.length}`);
        if (lastKinds.length > 20) lastKinds.shift();
        const topic = agentTopic('fuzz', `host-${i % 10}`, 'report');
        pending.push(
          new Promise<void>((resolve) =>
            client.publish(topic, c.payload, { qos: i % 3 === 0 ? 1 : 0 }, (err) => {
              if (err) publishError ??= `payload ${i} (${c.kind}, ${c.payload.length} B): ${err.message}`;
              resolve();
            }),
          ),
        );
      }
      await Promise.all(pending);
      if (sent + BATCH === WARMUP) {
        await sleep(1000);
        rssWarmKb = collector.proc.rssKb() ?? 0;
        youngWarmKb = youngKb(await scrape(collector));
      }
      rssPeakKb = Math.max(rssPeakKb, collector.proc.rssKb() ?? 0);
    }
    if (publishError !== undefined) {
      throw new Error(
        `The broker dropped the fuzzing client: ${publishError}; collector alive=${collector.proc.alive}; recent payloads ${lastKinds.join(' ')}; collector log tail ${JSON.stringify(collector.proc.lines.slice(-4)).slice(0, 3000)}`,
      );
    }
    const publishMs = Date.now() - started;
    let after = 0;
    await waitFor(
      async () => {
        after = accounted(await scrape(collector));
        return after - before >= TOTAL;
      },
      `ingest to account for ${TOTAL} payloads`,
      60_000,
      500,
    );
    await sleep(2000);
    const final = await scrape(collector);
    const rssEndKb = collector.proc.rssKb() ?? 0;
    const reasons = byLabel(final, 'hashwatch_ingest_messages_rejected_total', 'reason');
    const accepted = sum(final, 'hashwatch_ingest_reports_accepted_total');
    const rejected = sum(final, 'hashwatch_ingest_messages_rejected_total');
    const alive = collector.proc.alive;
    const youngEndKb = youngKb(final);
    const growthKb = rssEndKb - rssWarmKb - (youngEndKb - youngWarmKb);
    const ingestErrors = collector.proc.find((l) => l.msg === 'Ingest failed on a message').length;
    const held =
      alive &&
      accounted(final) - before === TOTAL &&
      growthKb < MAX_RSS_GROWTH_KB &&
      closes.length === 0 &&
      ingestErrors === 0;
    record({
      group: 'security-fuzz',
      kind: 'input',
      fault: `${TOTAL} fuzzed payloads on …/report (QoS 0/1) in ${Math.round(publishMs / 1000)} s: ${Object.entries(
        kinds,
      )
        .map(([k, n]) => `${k} ${n}`)
        .join(', ')}`,
      checked: `collector alive; each counted once: ${accepted} accepted, ${rejected} rejected by reason (${Object.entries(
        reasons,
      )
        .filter(([, n]) => n > 0)
        .map(([k, n]) => `${k} ${n}`)
        .join(
          ', ',
        )}), rest duplicates; RSS ${Math.round(rssWarmKb / 1024)} → ${Math.round(rssEndKb / 1024)} MiB (peak ${Math.round(rssPeakKb / 1024)}), of which V8's young generation ${Math.round(youngWarmKb / 1024)} → ${Math.round(youngEndKb / 1024)} MiB: ${Math.round(growthKb / 1024)} MiB grown besides`,
      held,
      produced: TOTAL,
      lost: 0,
      duplicates: 0,
    });
    expect(alive).toBe(true);
    expect(closes, 'the broker must not drop the fuzzing client: every payload was on a permitted topic').toEqual([]);
    expect(ingestErrors, 'no payload may reach the "Ingest failed" catch-all').toBe(0);
    expect(accounted(final) - before).toBe(TOTAL);
    expect(Object.keys(reasons).length).toBeGreaterThan(3);
    expect(growthKb, 'RSS growth besides the young generation').toBeLessThan(MAX_RSS_GROWTH_KB);
    // Still serving: a well-formed request after the storm.
    expect((await collector.get('/healthz')).status).toBe(200);
  } finally {
    await client.endAsync(true);
    await collector.proc.stop();
  }
}, 180_000);
