import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { parseDefaultGateway } from '../probes/gateway.js';
import { cgminerRequest } from '../readers/cgminer-client.js';
import { parseQuestion } from './dns-server.js';
import { createSimSite } from './farm.js';
import { SimRig } from './rig.js';

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (closers.length) await closers.pop()?.();
});

async function ask(rig: SimRig, command: string): Promise<string> {
  const r = await cgminerRequest({ host: '127.0.0.1', port: rig.port, command, signal: AbortSignal.timeout(2000) });
  if (!r.ok) throw new Error(r.error.message);
  return r.text;
}

describe('SimRig', () => {
  it('is deterministic for a seed under a fixed clock', async () => {
    const now = () => 1_700_000_000_000;
    const a = new SimRig({ id: 'a', seed: 7, now });
    const b = new SimRig({ id: 'a', seed: 7, now });
    await a.start();
    await b.start();
    closers.push(
      () => a.stop(),
      () => b.stop(),
    );
    const replyA = await ask(a, 'stats');
    expect(await ask(b, 'stats')).toBe(replyA);
    expect(replyA).toContain('"chain":[');
  });

  it('keeps its port across a power cut, refuses while cut, and forgets its counters', async () => {
    let t = 1_700_000_000_000;
    const rig = new SimRig({ id: 'p', seed: 1, now: () => t });
    await rig.start();
    closers.push(() => rig.stop());
    const port = rig.port;
    t += 60_000;
    expect(JSON.parse(await ask(rig, 'summary')).SUMMARY[0].Elapsed).toBe(60);
    await rig.powerCut();
    expect(rig.powerW()).toBe(0);
    const refused = await cgminerRequest({
      host: '127.0.0.1',
      port,
      command: 'summary',
      signal: AbortSignal.timeout(1000),
    });
    expect(refused).toMatchObject({ ok: false, error: { kind: 'refused' } });
    await rig.powerRestore();
    expect(rig.port).toBe(port);
    expect(JSON.parse(await ask(rig, 'summary')).SUMMARY[0]).toMatchObject({ Elapsed: 0, Accepted: 0 });
  });

  it('keeps hashing for workDrainMs after the pool is lost, then drops to 0', async () => {
    let t = 1_700_000_000_000;
    const rig = new SimRig({ id: 'w', seed: 1, now: () => t, workDrainMs: 30_000 });
    await rig.start();
    closers.push(() => rig.stop());
    rig.poolDisconnect();
    t += 10_000;
    const during = JSON.parse(await ask(rig, 'summary')).SUMMARY[0]['GHS 5s'];
    expect(Number(during)).toBeGreaterThan(100_000);
    t += 30_000;
    expect(Number(JSON.parse(await ask(rig, 'summary')).SUMMARY[0]['GHS 5s'])).toBe(0);
    const pool = JSON.parse(await ask(rig, 'pools')).POOLS[0];
    expect(pool).toMatchObject({ Status: 'Dead', 'Stratum Active': false });
  });

  it('answers unknown commands with STATUS E, hangs and speaks garbage on request', async () => {
    const rig = new SimRig({ id: 'g', seed: 1 });
    await rig.start();
    closers.push(() => rig.stop());
    expect(JSON.parse(await ask(rig, 'nope')).STATUS[0].STATUS).toBe('E');
    rig.garbage();
    const garbage = await ask(rig, 'summary');
    expect(() => JSON.parse(garbage)).toThrow();
    rig.hang();
    const r = await cgminerRequest({
      host: '127.0.0.1',
      port: rig.port,
      command: 'summary',
      signal: AbortSignal.timeout(200),
    });
    expect(r).toMatchObject({ ok: false, error: { kind: 'timeout' } });
  });
});

describe('SimSite', () => {
  it('gives targets for every rig and probe, and stop() closes every port', async () => {
    const site = createSimSite({ rigs: 3, seed: 4, metered: true, apiOf: (i) => (i === 2 ? 'axeos' : 'cgminer') });
    await site.start();
    const rigs = site.rigTargets();
    expect(rigs.map((r) => [r.id, r.api])).toEqual([
      ['rig-001', 'cgminer'],
      ['rig-002', 'cgminer'],
      ['rig-003', 'axeos'],
    ]);
    expect(rigs[0]?.meter?.field).toBe('outlets.rig-001.power_w');
    expect(site.probeTargets().map((p) => p.role)).toEqual(['gateway', 'dns', 'internet', 'internet', 'pool']);
    const ports = rigs.map((r) => r.port as number);
    await site.stop();
    for (const port of ports) {
      const refused = await new Promise<boolean>((resolve) => {
        const s = net.connect({ host: '127.0.0.1', port });
        s.on('connect', () => {
          s.destroy();
          resolve(false);
        });
        s.on('error', () => resolve(true));
      });
      expect(refused).toBe(true);
    }
  });

  it('parses DNS questions and route tables used by the sim', () => {
    const q = Buffer.from('abcd01000001000000000000047465737400000100 01'.replace(/ /g, ''), 'hex');
    expect(parseQuestion(q)).toMatchObject({ name: 'test', type: 1 });
    expect(parseQuestion(Buffer.alloc(5))).toBeUndefined();
    expect(parseDefaultGateway('h\nlo\t00000000\t0100007F\t0003\n')).toBe('127.0.0.1');
  });
});
