/**
 * What the default spool holds: an agent polling a simulated 100-rig farm (real cgminer-family
 * replies with varied values, real uplink probes) while no broker can be reached, with the
 * default `spool` config. The byte bound must not cut an outage short of the age bound: a farm cut
 * off for days (Kazakhstan, January 2022: five days) is what the spool is for.
 */
import { rmSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { Agent } from '../src/agent.js';
import { parseConfig } from '../src/config.js';
import { silentLogger } from '../src/log.js';
import { pollRound } from '../src/poller.js';
import { createSimSite } from '../src/sim/index.js';
import { testConfig } from './helpers/agent.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

describe('spool capacity with the default config', () => {
  it('holds max_age_s of reports from a 100-rig host at the default interval', async () => {
    const defaults = parseConfig({ site: 's', host: 'h', broker: { url: 'mqtt://127.0.0.1:1883' } }, 'defaults');
    const site = createSimSite({ rigs: 100, seed: 5 });
    await site.start();
    cleanups.push(() => site.stop());
    // Port 1 on loopback refuses connections: every report stays in the spool.
    const config = testConfig('mqtt://127.0.0.1:1', { spool: {} });
    cleanups.push(() => rmSync(config.data_dir, { recursive: true, force: true }));
    expect(config.spool).toEqual(defaults.spool);
    const agent = new Agent({
      config,
      log: silentLogger(),
      poll: (_rigs, _probes, options) => pollRound(site.rigTargets(), site.probeTargets(), options),
    });
    cleanups.push(() => agent.stop());
    agent.start({ schedule: false });
    const rounds = 6;
    for (let i = 0; i < rounds; i++) {
      const out = await agent.runRound();
      if (out.kind !== 'done') throw new Error(`round ${i} did not produce: ${JSON.stringify(out)}`);
    }
    expect(agent.spool.depth()).toBe(rounds);
    const spooled = agent.spool.nextBatch(rounds, Number.MAX_SAFE_INTEGER);
    const rawBytes = spooled.reduce((sum, r) => sum + Buffer.byteLength(r.payload), 0);
    expect(spooled.every((r) => (JSON.parse(r.payload) as { rigs: unknown[] }).rigs.length === 100)).toBe(true);
    expect(agent.spool.dropped()).toBe(0);
    const storedPerReport = agent.spool.bytes() / rounds;
    // Raw JSON would be ~110 kB a report (~950 MB a day); stored deflated it is several times smaller.
    expect(rawBytes / rounds).toBeGreaterThan(90_000);
    expect(storedPerReport).toBeLessThan(rawBytes / rounds / 8);
    const reportsInMaxAge = (defaults.spool.max_age_s * 1000) / defaults.interval_ms;
    expect(storedPerReport * reportsInMaxAge).toBeLessThan(defaults.spool.max_bytes);
  });
});
