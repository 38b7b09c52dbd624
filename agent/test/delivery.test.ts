/**
 * Delivery against a real broker (aedes on loopback) and a real MQTT "collector" (the acker):
 * outages, full spools, reconnect storms, commands and garbage.
 */
import { rmSync } from 'node:fs';
import { encode, exampleReport } from '@hashwatch/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { Agent } from '../src/agent.js';
import type { AgentConfig } from '../src/config.js';
import { silentLogger } from '../src/log.js';
import { Spool } from '../src/spool.js';
import { brokerWithAcker, waitFor } from './helpers/acker.js';
import { fakePoll, testConfig } from './helpers/agent.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

async function setup(over: Record<string, unknown> = {}, rigCount = 3) {
  const { broker, acker } = await brokerWithAcker(cleanups);
  const config: AgentConfig = testConfig(broker.url, over);
  cleanups.push(() => rmSync(config.data_dir, { recursive: true, force: true }));
  const agent = new Agent({ config, log: silentLogger(), poll: fakePoll(rigCount) });
  cleanups.push(() => agent.stop());
  agent.start({ schedule: false });
  await waitFor(() => agent.publisher.connected, 5000, 'agent connected');
  return { broker, acker, agent, config };
}

async function produce(agent: Agent, rounds: number): Promise<string[]> {
  const keys: string[] = [];
  for (let i = 0; i < rounds; i++) {
    const out = await agent.runRound();
    if (out.kind !== 'done') throw new Error(`round ${i} did not produce: ${JSON.stringify(out)}`);
    for (const seq of out.seqs) keys.push(`${agent.bootId}:${seq}`);
  }
  return keys;
}

describe('agent delivery through a real broker', () => {
  it('delivers every report produced while the broker was away, each at least once, and empties the spool', async () => {
    const { broker, acker, agent } = await setup();
    const produced = await produce(agent, 3);
    await waitFor(() => agent.spool.depth() === 0, 10_000, 'live reports acked');

    await broker.stop();
    await waitFor(() => !agent.publisher.connected, 5000, 'agent noticed the outage');
    produced.push(...(await produce(agent, 10)));
    expect(agent.spool.depth()).toBe(10);

    await broker.start();
    // Live reports keep flowing while the backlog drains.
    produced.push(...(await produce(agent, 2)));
    await waitFor(() => agent.spool.depth() === 0, 15_000, 'spool drained');
    await waitFor(() => acker.keys(agent.bootId).size === produced.length, 5000, 'all reports at the acker');
    // Filtered by boot: an agent of another test file may find this port when its own broker restarts.
    expect([...acker.keys(agent.bootId)].sort()).toEqual([...produced].sort());

    // The ones produced during the outage came back marked historical.
    const outage = new Set(produced.slice(3, 13));
    const replayed = acker.received.filter((r) => outage.has(`${r.report.boot_id}:${r.report.seq}`));
    expect(replayed.length).toBeGreaterThanOrEqual(10);
    expect(replayed.every((r) => r.report.historical === true)).toBe(true);
    expect(acker.rejected).toEqual([]);
    // Each report carries the agent's self-stats; the latest knows the publish latency.
    const last = acker.received[acker.received.length - 1]?.report;
    expect(last?.agent?.spool_depth).toBeGreaterThanOrEqual(0);
    expect(agent.publisher.stats().publishLatencyMs).toBeGreaterThanOrEqual(0);
  });

  it("after a restart, the new boot's first report overtakes the previous boot's backlog, which still replays in order", async () => {
    const { broker, acker } = await brokerWithAcker(cleanups);
    // 40 backlog reports at 10/s take 4 s: the old order put the new boot's report behind all of them.
    const config = testConfig(broker.url, { replay: { rate_per_s: 10, max_inflight: 20, ack_timeout_ms: 10_000 } });
    cleanups.push(() => rmSync(config.data_dir, { recursive: true, force: true }));
    const oldBoot = 'dddddddd-0000-4000-8000-000000000004';
    const backlog = 40;
    const now = Date.now();
    const previous = new Spool({
      dir: config.data_dir,
      maxBytes: config.spool.max_bytes,
      maxAgeMs: config.spool.max_age_s * 1000,
      memoryMaxReports: 0,
      log: silentLogger(),
    });
    previous.open(oldBoot, now);
    for (let seq = 0; seq < backlog; seq++) {
      const ts = now - (backlog - seq) * 1000;
      const out = encode('report', { ...exampleReport(ts, 2, seq), boot_id: oldBoot }, now);
      if (!out.ok) throw new Error(out.error.message);
      previous.append({ bootId: oldBoot, seq, ts, size: Buffer.byteLength(out.value), payload: out.value }, now);
    }
    previous.close();

    const agent = new Agent({ config, log: silentLogger(), poll: fakePoll(2) });
    cleanups.push(() => agent.stop());
    agent.start({ schedule: false });
    // The first round ends before the MQTT connection is up, so its report waits in the spool.
    expect(await agent.runRound()).toEqual({ kind: 'done', seqs: [0] });
    expect(agent.publisher.connected).toBe(false);
    await waitFor(() => acker.keys(agent.bootId).size === 1, 5000, "the new boot's first report");
    expect(acker.keys(oldBoot).size).toBeLessThan(10);

    await waitFor(() => agent.spool.depth() === 0, 15_000, 'backlog replayed and acked');
    const firstSeen: number[] = [];
    for (const r of acker.received) {
      if (r.report.boot_id === oldBoot && !firstSeen.includes(r.report.seq)) firstSeen.push(r.report.seq);
    }
    expect(firstSeen).toEqual(Array.from({ length: backlog }, (_, seq) => seq));
    expect(acker.rejected).toEqual([]);
  });

  it('resends after a silent collector: unacked reports are sent again after the ack timeout', async () => {
    const { acker, agent } = await setup();
    acker.acking = false;
    const produced = await produce(agent, 4);
    await waitFor(() => acker.keys(agent.bootId).size === 4, 5000, 'live reports seen');
    expect(agent.spool.depth()).toBe(4);
    acker.acking = true;
    await waitFor(() => agent.spool.depth() === 0, 10_000, 'resent after ack timeout and acked');
    // Filtered by boot: an agent of another test file may find this port when its own broker restarts.
    expect([...acker.keys(agent.bootId)].sort()).toEqual([...produced].sort());
    // Each of them was on the wire at least twice, always with the same (boot_id, seq).
    expect(acker.received.length).toBeGreaterThanOrEqual(8);
  });

  it('spool full: drops the oldest, counts it, keeps polling and reports the drops', async () => {
    const { acker, agent } = await setup({ spool: { max_bytes: 65_536 } }, 20);
    acker.acking = false;
    // Spooled reports are deflated (a few hundred bytes each here): produce until the bound bites.
    const produced: string[] = [];
    while (agent.spool.dropped() === 0 && produced.length < 5000) produced.push(...(await produce(agent, 10)));
    expect(agent.spool.bytes()).toBeLessThanOrEqual(65_536);
    const dropped = agent.spool.dropped();
    expect(dropped).toBeGreaterThan(0);
    expect(agent.spool.depth()).toBe(produced.length - dropped);
    // The spool holds the newest reports.
    const spooled = agent.spool.nextBatch(1000, Number.MAX_SAFE_INTEGER).map((r) => `${r.bootId}:${r.seq}`);
    expect(spooled).toEqual(produced.slice(produced.length - spooled.length));
    acker.acking = true;
    await produce(agent, 1);
    await waitFor(() => agent.spool.depth() === 0, 10_000, 'spool drained');
    const last = acker.received.find((r) => r.report.seq === produced.length)?.report;
    expect(last?.agent?.spool_dropped_total).toBe(dropped);
    expect(last?.agent?.errors['spool_dropped_bytes']).toBe(dropped);
  });

  it('answers rebirth and resend commands, and counts garbage without acting on it', async () => {
    const { acker, agent, broker } = await setup();
    const births: string[] = [];
    const { connect } = await import('mqtt');
    const listener = connect(broker.url, { reconnectPeriod: 0 });
    cleanups.push(() => void listener.end(true));
    await new Promise<void>((r) => listener.once('connect', () => r()));
    listener.on('message', (_t, p) => births.push(p.toString()));
    await listener.subscribeAsync('hw/v1/farm-a/host-1/birth', { qos: 1 });
    await waitFor(() => births.length === 1, 5000, 'retained birth');

    await acker.publish('hw/v1/farm-a/host-1/cmd', JSON.stringify({ v: 1, ts: Date.now(), cmd: 'rebirth' }));
    await waitFor(() => births.length === 2, 5000, 'rebirth');
    expect(JSON.parse(births[1] ?? '{}').boot_id).toBe(agent.bootId);

    acker.acking = false;
    await produce(agent, 3);
    await waitFor(() => acker.keys(agent.bootId).size === 3, 5000, 'live reports');
    const before = acker.received.length;
    await acker.publish(
      'hw/v1/farm-a/host-1/cmd',
      JSON.stringify({ v: 1, ts: Date.now(), cmd: 'resend', boot_id: agent.bootId, from_seq: 1, to_seq: 2 }),
    );
    await waitFor(() => acker.received.length >= before + 2, 5000, 'resent reports');
    const resent = acker.received.slice(before).map((r) => r.report.seq);
    expect(resent.slice(0, 2).sort()).toEqual([1, 2]);

    await acker.publish('hw/v1/farm-a/host-1/ack', '{"v":1,"acks":"nope"}');
    await acker.publish('hw/v1/farm-a/host-1/cmd', 'not json');
    await waitFor(() => Object.keys(agent.publisher.stats().inboundRejected).length === 2, 5000, 'rejections');
    expect(agent.publisher.stats().inboundRejected).toEqual({ HW_ERR_SCHEMA: 1, HW_ERR_MALFORMED_JSON: 1 });
    expect(agent.spool.depth()).toBe(3);
  });

  it('a reconnect storm (20 broker restarts) delivers everything and leaks no socket or timer after stop', async () => {
    const resources = () => {
      const counts: Record<string, number> = {};
      for (const r of process.getActiveResourcesInfo()) counts[r] = (counts[r] ?? 0) + 1;
      return counts;
    };
    const baseline = resources();
    const { broker, acker, agent } = await setup();
    const produced: string[] = [];
    for (let i = 0; i < 20; i++) {
      const connects = agent.publisher.stats().connects;
      await broker.restart(50);
      produced.push(...(await produce(agent, 1)));
      await waitFor(() => agent.publisher.stats().connects > connects, 10_000, `reconnect after restart ${i + 1}`);
    }
    await waitFor(() => agent.spool.depth() === 0, 15_000, 'spool drained after the storm');
    // Filtered by boot: an agent of another test file may find this port when its own broker restarts.
    expect([...acker.keys(agent.bootId)].sort()).toEqual([...produced].sort());
    expect(agent.publisher.stats().connects).toBeGreaterThanOrEqual(21);

    for (const fn of cleanups.splice(0).reverse()) await fn();
    // Closed handles leave the active list on the next loop turns.
    await waitFor(
      () => {
        const now = resources();
        return ['TCPSocketWrap', 'TCPServerWrap', 'Timeout'].every((k) => (now[k] ?? 0) <= (baseline[k] ?? 0));
      },
      5000,
      `resources back to baseline (baseline ${JSON.stringify(baseline)}, now ${JSON.stringify(resources())})`,
    );
  });
});
