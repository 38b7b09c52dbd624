import net from 'node:net';
import { type RigSample, validate } from '@hashwatch/protocol';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SimRig } from '../sim/rig.js';
import { SimUplink } from '../sim/uplink.js';
import type { RigTarget } from '../targets.js';
import { cgminerReader, resetCgminerCache } from './cgminer.js';

const opts = { timeoutMs: 1500, now: () => Date.now() };

function valid(sample: RigSample): RigSample {
  const r = validate(
    'report',
    { v: 1, boot_id: 'test-boot-1', seq: 0, ts: sample.ts, interval_ms: 10_000, rigs: [sample], probes: [] },
    Date.now(),
  );
  if (!r.ok) throw new Error(`sample fails the protocol schema: ${r.error.message}`);
  return sample;
}

async function poll(target: RigTarget, timeoutMs = opts.timeoutMs): Promise<RigSample> {
  return valid(await cgminerReader.poll(target, new AbortController().signal, { ...opts, timeoutMs }));
}

describe('cgminer reader against a simulated Antminer', () => {
  let uplink: SimUplink;
  let rig: SimRig;

  beforeEach(async () => {
    resetCgminerCache();
    uplink = new SimUplink();
    await uplink.start();
    rig = new SimRig({ id: 'rig-a', seed: 42, uplink, workDrainMs: 0 });
    await rig.start();
  });
  afterEach(async () => {
    await rig.stop();
    await uplink.stop();
  });

  it('reads a healthy rig field by field', async () => {
    const s = await poll(rig.target());
    expect(s.reachable).toBe(true);
    expect(s.error).toBeUndefined();
    expect(s.hashrate_hs).toBeGreaterThan(100e12);
    expect(s.hashrate_hs).toBeLessThan(120e12);
    expect(s.hashrate_ideal_hs).toBeCloseTo(110e12, -9);
    expect(s.boards).toHaveLength(3);
    for (const b of s.boards ?? []) {
      expect(b.ok).toBe(true);
      expect(b.chips_seen).toBe(114);
      expect(b.chips_expected).toBe(114);
      expect(b.temp_c).toBeGreaterThan(55);
    }
    expect(s.fans?.map((f) => f.fan)).toEqual(['fan0', 'fan1', 'fan2', 'fan3']);
    expect(s.fans?.every((f) => f.rpm > 4000)).toBe(true);
    expect(s.pools?.[0]).toMatchObject({ status: 'alive', active: true, url: uplink.poolUrl });
    expect(s.power_w).toBeUndefined(); // stock Antminer API gives no power
    expect(s.uptime_s).toBeGreaterThanOrEqual(0);
    expect(s.flags).toBeUndefined();
  });

  it('sees a dead board as not ok with 0 chips and 0 hashrate', async () => {
    rig.killBoard(1);
    const s = await poll(rig.target());
    const b1 = s.boards?.find((b) => b.board === '1');
    expect(b1).toMatchObject({ ok: false, chips_seen: 0, chips_expected: 114, hashrate_hs: 0 });
    expect(b1?.temp_c).toBeUndefined();
    expect(s.boards?.filter((b) => b.ok)).toHaveLength(2);
    expect(s.hashrate_hs).toBeLessThan(80e12);
  });

  it('sees a stopped fan at 0 rpm and hotter chips', async () => {
    rig.stopFan(2);
    const s = await poll(rig.target());
    expect(s.fans?.find((f) => f.fan === 'fan2')?.rpm).toBe(0);
    expect(Math.max(...(s.temps ?? []).map((t) => t.temp_c))).toBeGreaterThan(75);
  });

  it('sees overheating with throttled hashrate', async () => {
    rig.overheat();
    const s = await poll(rig.target());
    expect(Math.max(...(s.temps ?? []).map((t) => t.temp_c))).toBeGreaterThan(90);
    expect(s.hashrate_hs).toBeLessThan(60e12);
    expect(s.hashrate_hs).toBeGreaterThan(50e12);
  });

  it('sees a pool disconnect: Dead, not active, hashrate drops once work drains', async () => {
    await poll(rig.target()); // a share is found while connected
    await new Promise((r) => setTimeout(r, 30));
    rig.poolDisconnect();
    const s = await poll(rig.target());
    expect(s.pools?.[0]).toMatchObject({ status: 'dead', active: false });
    expect(s.hashrate_hs).toBe(0);
    expect(s.boards?.every((b) => b.ok)).toBe(true); // boards are fine, only work is missing
  });

  it('sees the uplink cut through the pool state', async () => {
    await uplink.cut();
    const s = await poll(rig.target());
    expect(s.pools?.[0]).toMatchObject({ status: 'dead', active: false });
    await uplink.restore();
    const s2 = await poll(rig.target());
    expect(s2.pools?.[0]).toMatchObject({ status: 'alive', active: true });
  });

  it('reports a power cut as refused, and a restore with uptime reset', async () => {
    await rig.powerCut();
    const s = await poll(rig.target());
    expect(s).toMatchObject({ reachable: false, error: { kind: 'refused' } });
    expect(s.error?.message).toContain(`127.0.0.1:${rig.port}`);
    await rig.powerRestore();
    const s2 = await poll(rig.target());
    expect(s2.reachable).toBe(true);
    expect(s2.uptime_s).toBeLessThanOrEqual(1);
  });

  it('reports a hung rig as a timeout within the deadline', async () => {
    rig.hang();
    const started = Date.now();
    const s = await poll(rig.target(), 300);
    expect(s).toMatchObject({ reachable: false, error: { kind: 'timeout' } });
    expect(s.error?.message).toMatch(/accepted the connection but did not answer/);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('reports garbage as invalid_reply', async () => {
    rig.garbage();
    const s = await poll(rig.target());
    expect(s).toMatchObject({ reachable: false, error: { kind: 'invalid_reply' } });
  });

  it('heals every fault', async () => {
    rig.killBoard(0);
    rig.garbage();
    await rig.heal();
    const s = await poll(rig.target());
    expect(s.reachable).toBe(true);
    expect(s.boards?.every((b) => b.ok)).toBe(true);
  });

  it('falls back to single commands on firmware without multi-command support', async () => {
    const old = new SimRig({ id: 'rig-old', seed: 3, singleCommandOnly: true });
    await old.start();
    try {
      const s = await poll(old.target());
      expect(s.reachable).toBe(true);
      expect(s.boards).toHaveLength(3);
      expect(s.pools).toHaveLength(1);
      const before = old.requests;
      await poll(old.target());
      expect(old.requests - before).toBe(4); // remembered: no failed multi-command first
    } finally {
      await old.stop();
    }
  });
});

/** A one-shot fake cgminer port that answers every connection with fixed bytes. */
async function fixedReplyServer(
  reply: Buffer | string | null,
  closeAfter = true,
): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.once('data', () => {
      if (reply === null) return;
      if (closeAfter) s.end(reply);
      else s.write(reply);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

function target(port: number): RigTarget {
  return { id: 'bad-rig', api: 'cgminer', host: '127.0.0.1', port, model: 'x', nominal_hashrate_hs: 1e14 };
}

describe('cgminer reader against bad replies', () => {
  beforeEach(() => resetCgminerCache());

  const summaryWith = (fields: Record<string, unknown>) =>
    JSON.stringify({
      summary: [{ STATUS: [{ STATUS: 'S', Description: 'cgminer 4.9.2' }], SUMMARY: [{ Elapsed: 100, ...fields }] }],
      id: 1,
    });

  const cases: [string, Buffer | string, (s: RigSample) => void][] = [
    [
      'a partial reply',
      '{"summary":[{"STATUS":[{"STATUS":"S"}],"SUMMARY":[{"Elapsed":12,"GHS 5s":"1',
      (s) => expect(s).toMatchObject({ reachable: false, error: { kind: 'invalid_reply' } }),
    ],
    ['non-JSON', 'HTTP/1.1 400 Bad Request\r\n\r\n', (s) => expect(s.error?.kind).toBe('invalid_reply')],
    [
      'wrong-typed fields',
      summaryWith({ 'GHS 5s': 'fast', Accepted: { n: 1 }, Elapsed: 'yesterday' }),
      (s) => {
        expect(s.reachable).toBe(true);
        expect(s.hashrate_hs).toBeUndefined();
        expect(s.accepted).toBeUndefined();
        expect(s.flags).toContain('field_invalid');
      },
    ],
    [
      'negative power',
      summaryWith({ 'MHS 5s': 1000, Power: -50, 'Factory GHS': 100 }),
      (s) => {
        expect(s.power_w).toBeUndefined();
        expect(s.flags).toContain('power_absurd');
        expect(s.hashrate_hs).toBe(1e9);
      },
    ],
    [
      'a 1e30 hashrate',
      summaryWith({ 'GHS 5s': 1e30, Accepted: '156.0000' }),
      (s) => {
        expect(s.hashrate_hs).toBeUndefined();
        expect(s.flags).toContain('hashrate_absurd');
        expect(s.accepted).toBe(156);
      },
    ],
    [
      'a refused summary',
      JSON.stringify({ summary: [{ STATUS: [{ STATUS: 'E', Msg: 'Access denied' }] }], id: 1 }),
      (s) => {
        expect(s.reachable).toBe(false);
        expect(s.error?.kind).toBe('invalid_reply');
      },
    ],
    [
      'quirks that are safe to repair (trailing NUL, }{, missing comma, nan)',
      Buffer.from(
        '{"summary":[{"STATUS":[{"STATUS":"S"}],"SUMMARY":[{"Elapsed":5 "GHS 5s":"100.5","Device Hardware%":nan}]}]}{"x":1}\0',
      ),
      (s) => {
        // `}{` joins two top-level values: the repaired text is an array-less pair, which is unsafe.
        expect(s.reachable).toBe(false);
      },
    ],
    [
      'missing comma and nan inside one reply',
      Buffer.from(
        '{"summary":[{"STATUS":[{"STATUS":"S"}],"SUMMARY":[{"Elapsed":5 "GHS 5s":"100.5","Device Hardware%":nan}]}],"id":1}\0',
      ),
      (s) => {
        expect(s.reachable).toBe(true);
        expect(s.hashrate_hs).toBeCloseTo(100.5e9, 0);
        expect(s.uptime_s).toBe(5);
        expect(s.flags).toContain('reply_repaired');
      },
    ],
  ];

  for (const [name, reply, check] of cases) {
    it(`handles ${name}`, async () => {
      const srv = await fixedReplyServer(reply);
      try {
        check(await poll(target(srv.port)));
      } finally {
        await srv.close();
      }
    });
  }

  it('reports a connection closed without a reply as protocol', async () => {
    const srv = await fixedReplyServer('');
    try {
      const s = await poll(target(srv.port));
      expect(s.error?.kind).toBe('protocol');
    } finally {
      await srv.close();
    }
  });

  it('reports a reply that starts but never ends as a timeout', async () => {
    const srv = await fixedReplyServer('{"summary":[{"STATUS"', false);
    try {
      const s = await poll(target(srv.port), 300);
      expect(s.error?.kind).toBe('timeout');
      expect(s.error?.message).toMatch(/started a reply/);
    } finally {
      await srv.close();
    }
  });
});
