import { type RigSample, validate } from '@hashwatch/protocol';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SimRig } from '../sim/rig.js';
import { SimUplink } from '../sim/uplink.js';
import { axeosReader, parseAxeos } from './axeos.js';

const NOW = Date.now();

function valid(sample: RigSample): RigSample {
  const r = validate(
    'report',
    { v: 1, boot_id: 'test-boot-1', seq: 0, ts: sample.ts, interval_ms: 10_000, rigs: [sample], probes: [] },
    Date.now(),
  );
  if (!r.ok) throw new Error(`sample fails the protocol schema: ${r.error.message}`);
  return sample;
}

describe('axeos reader against a simulated bitaxe', () => {
  let uplink: SimUplink;
  let rig: SimRig;
  const poll = async (timeoutMs = 1500) =>
    valid(await axeosReader.poll(rig.target(), new AbortController().signal, { timeoutMs, now: () => Date.now() }));

  beforeEach(async () => {
    uplink = new SimUplink();
    await uplink.start();
    rig = new SimRig({ id: 'bitaxe-1', api: 'axeos', seed: 9, uplink, workDrainMs: 0 });
    await rig.start();
  });
  afterEach(async () => {
    await rig.stop();
    await uplink.stop();
  });

  it('reads a healthy bitaxe', async () => {
    const s = await poll();
    expect(s.reachable).toBe(true);
    expect(s.hashrate_hs).toBeGreaterThan(1.1e12);
    expect(s.hashrate_ideal_hs).toBe(1.2e12);
    expect(s.power_source).toBe('rig');
    expect(s.power_w).toBeGreaterThan(10);
    expect(s.fans?.[0]?.rpm).toBeGreaterThan(4000);
    expect(s.boards?.[0]).toMatchObject({ board: '0', ok: true, chips_expected: 1 });
    expect(s.pools?.[0]).toMatchObject({ url: uplink.poolUrl, status: 'unknown', active: true });
  });

  it('board death, stopped fan, overheat, pool loss', async () => {
    rig.killBoard(0);
    let s = await poll();
    expect(s.boards?.[0]?.ok).toBe(false);
    expect(s.hashrate_hs).toBe(0);
    await rig.heal();
    rig.stopFan(0);
    s = await poll();
    expect(s.fans?.[0]?.rpm).toBe(0);
    rig.overheat();
    s = await poll();
    expect(s.firmware_errors).toContainEqual(expect.objectContaining({ kind: 'temperature' }));
    expect(s.hashrate_hs).toBeLessThan(0.7e12);
    await rig.heal();
    rig.poolDisconnect();
    s = await poll();
    expect(s.hashrate_hs).toBe(0);
  });

  it('power cut: refused; hang: timeout; garbage: invalid_reply', async () => {
    await rig.powerCut();
    expect((await poll()).error?.kind).toBe('refused');
    await rig.powerRestore();
    expect((await poll()).reachable).toBe(true);
    rig.hang();
    expect((await poll(300)).error?.kind).toBe('timeout');
    await rig.heal();
    rig.garbage();
    expect((await poll()).error?.kind).toBe('invalid_reply');
  });
});

describe('parseAxeos bad input', () => {
  it('drops absurd and wrong-typed values with flags', () => {
    const s = valid(parseAxeos('b', { hashRate: 1e30, power: -3, temp: 'hot', fanrpm: 4000, uptimeSeconds: 10 }, NOW));
    expect(s.hashrate_hs).toBeUndefined();
    expect(s.power_w).toBeUndefined();
    expect(s.temps).toBeUndefined();
    expect(s.flags).toEqual(expect.arrayContaining(['hashrate_absurd', 'power_absurd', 'field_invalid']));
    expect(s.fans).toEqual([{ fan: 'fan0', rpm: 4000 }]);
  });
  it('a non-object is invalid_reply', () => {
    expect(parseAxeos('b', [1, 2], NOW)).toMatchObject({ reachable: false, error: { kind: 'invalid_reply' } });
  });
});
