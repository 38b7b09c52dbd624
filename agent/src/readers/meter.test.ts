import http from 'node:http';
import type net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createSimSite } from '../sim/farm.js';
import { SimRig } from '../sim/rig.js';
import type { RigTarget } from '../targets.js';
import { readerFor } from './index.js';
import { readDotPath, readMeter } from './meter.js';

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (closers.length) await closers.pop()?.();
});

async function meterServer(handler: http.RequestListener): Promise<string> {
  const srv = http.createServer(handler);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  closers.push(async () => {
    srv.closeAllConnections();
    await new Promise<void>((r) => srv.close(() => r()));
  });
  return `http://127.0.0.1:${(srv.address() as net.AddressInfo).port}/status`;
}

const signal = () => new AbortController().signal;

describe('meter', () => {
  it('reads a dot path', () => {
    expect(readDotPath({ outlets: [{ w: 1 }, { w: 2 }] }, 'outlets.1.w')).toBe(2);
    expect(readDotPath({ a: 1 }, 'a.b')).toBeUndefined();
  });

  it('reads watts; rejects missing, negative, non-JSON, HTTP errors', async () => {
    let body = '{"outlets":{"3":{"power_w":"3251.5"}}}';
    let status = 200;
    const url = await meterServer((_q, res) => res.writeHead(status).end(body));
    const m = { kind: 'http-json' as const, url, field: 'outlets.3.power_w' };
    expect(await readMeter(m, signal(), 1000)).toEqual({ ok: true, powerW: 3251.5 });
    body = '{"outlets":{}}';
    expect(await readMeter(m, signal(), 1000)).toMatchObject({ ok: false, error: { kind: 'invalid_reply' } });
    body = '{"outlets":{"3":{"power_w":-20}}}';
    expect(await readMeter(m, signal(), 1000)).toMatchObject({ ok: false, flag: 'power_absurd' });
    body = '<html>';
    expect(await readMeter(m, signal(), 1000)).toMatchObject({ ok: false, flag: 'meter_failed' });
    status = 500;
    expect(await readMeter(m, signal(), 1000)).toMatchObject({ ok: false, error: { kind: 'protocol' } });
  });

  it('a metered rig gets power_source meter; a meter failure keeps the rig data and flags it', async () => {
    const site = createSimSite({ rigs: 1, metered: true, seed: 5 });
    await site.start();
    closers.push(() => site.stop());
    const [target] = site.rigTargets() as [RigTarget];
    const opts = { timeoutMs: 1000, now: () => Date.now() };
    const s = await readerFor('cgminer').poll(target, signal(), opts);
    expect(s).toMatchObject({ reachable: true, power_source: 'meter' });
    expect(s.power_w).toBeGreaterThan(3000);

    // Rig powered off: the meter reads ~0 while the rig refuses: evidence of a power loss.
    await site.rigs[0]?.powerCut();
    const off = await readerFor('cgminer').poll(target, signal(), opts);
    expect(off).toMatchObject({ reachable: false, power_w: 0, power_source: 'meter', error: { kind: 'refused' } });
    await site.rigs[0]?.powerRestore();

    const broken = { ...target, meter: { kind: 'http-json' as const, url: 'http://127.0.0.1:1/x', field: 'w' } };
    const s2 = await readerFor('cgminer').poll(broken, signal(), opts);
    expect(s2.reachable).toBe(true);
    expect(s2.hashrate_hs).toBeGreaterThan(0);
    expect(s2.power_w).toBeUndefined();
    expect(s2.flags).toContain('meter_failed');
  });

  it('axeos rigs accept a meter too', async () => {
    const rig = new SimRig({ id: 'bx', api: 'axeos' });
    await rig.start();
    closers.push(() => rig.stop());
    const url = await meterServer((_q, res) => res.end('{"w":21}'));
    const s = await readerFor('axeos').poll(rig.target({ meter: { kind: 'http-json', url, field: 'w' } }), signal(), {
      timeoutMs: 1000,
      now: () => Date.now(),
    });
    expect(s).toMatchObject({ power_w: 21, power_source: 'meter' });
  });
});
