/**
 * Every fixture of real firmware replies, served byte for byte by a fake rig on 127.0.0.1 and read
 * through the real reader, then checked field by field (node_exporter style): a parser regression
 * shows up as a field diff here.
 */
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { type RigSample, validate } from '@hashwatch/protocol';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RigTarget } from '../targets.js';
import { axeosReader } from './axeos.js';
import { cgminerReader, resetCgminerCache } from './cgminer.js';

const FIXTURES = fileURLToPath(new URL('../../test/fixtures/', import.meta.url));
const NOW = Date.UTC(2025, 0, 15, 12, 0, 0);
const INVALID = '{"STATUS":[{"STATUS":"E","When":0,"Code":14,"Msg":"Invalid command","Description":"x"}],"id":1}\0';

function valid(sample: RigSample): RigSample {
  const r = validate(
    'report',
    { v: 1, boot_id: 'test-boot-1', seq: 0, ts: sample.ts, interval_ms: 10_000, rigs: [sample], probes: [] },
    NOW,
  );
  if (!r.ok) throw new Error(`sample fails the protocol schema: ${r.error.message}`);
  return sample;
}

/** A fake cgminer port answering each command with `<dir>/<command>.json`, else "Invalid command". */
async function fixtureRig(dir: string): Promise<{ port: number; asked: string[]; close: () => Promise<void> }> {
  const asked: string[] = [];
  const server = net.createServer((s) => {
    s.on('error', () => {});
    s.once('data', (d) => {
      const command = String((JSON.parse(d.toString()) as { command: string }).command);
      asked.push(command);
      const file = `${FIXTURES}${dir}/${command}.json`;
      s.end(existsSync(file) ? readFileSync(file) : INVALID);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    asked,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

async function readFixture(dir: string): Promise<{ sample: RigSample; asked: string[] }> {
  const rig = await fixtureRig(dir);
  try {
    const target: RigTarget = {
      id: 'fx',
      api: 'cgminer',
      host: '127.0.0.1',
      port: rig.port,
      model: 'x',
      nominal_hashrate_hs: 1e14,
    };
    const sample = await cgminerReader.poll(target, new AbortController().signal, { timeoutMs: 2000, now: () => NOW });
    return { sample: valid(sample), asked: rig.asked };
  } finally {
    await rig.close();
  }
}

describe('cgminer fixtures', () => {
  beforeEach(() => resetCgminerCache());

  it('antminer/bmminer-2.0.0-s9: legacy 16-slot stats, "}{" between STATS entries, H:MM:SS share age', async () => {
    const { sample: s, asked } = await readFixture('antminer/bmminer-2.0.0-s9');
    expect(asked).toEqual(['summary+stats+pools+devs', 'summary', 'stats', 'pools', 'devs']);
    expect(s.reachable).toBe(true);
    expect(s.hashrate_hs).toBeCloseTo(13929.71e9, -3);
    expect(s.hashrate_avg_hs).toBeCloseTo(13915.15e9, -3);
    expect(s.hashrate_ideal_hs).toBeCloseTo(13500e9, -3);
    expect(s.power_w).toBeUndefined();
    expect(s.uptime_s).toBe(86514);
    expect(s.accepted).toBe(15120);
    expect(s.rejected).toBe(14);
    expect(s.stale).toBe(2);
    expect(s.hw_errors).toBe(1234);
    expect(s.boards).toEqual([
      { board: '6', ok: true, chips_seen: 63, chips_expected: 63, hashrate_hs: 4643.44e9, temp_c: 72, hw_errors: 413 },
      { board: '7', ok: true, chips_seen: 61, chips_expected: 63, hashrate_hs: 4619.09e9, temp_c: 70, hw_errors: 250 },
      { board: '8', ok: true, chips_seen: 63, chips_expected: 63, hashrate_hs: 4667.18e9, temp_c: 75, hw_errors: 571 },
    ]);
    expect(s.temps).toEqual([
      { sensor: 'board6.chip', temp_c: 72 },
      { sensor: 'board6.pcb', temp_c: 57 },
      { sensor: 'board7.chip', temp_c: 70 },
      { sensor: 'board7.pcb', temp_c: 55 },
      { sensor: 'board8.chip', temp_c: 75 },
      { sensor: 'board8.pcb', temp_c: 60 },
    ]);
    expect(s.fans).toEqual([
      { fan: 'fan3', rpm: 5760 },
      { fan: 'fan6', rpm: 5880 },
    ]);
    expect(s.pools).toEqual([
      {
        url: 'stratum+tcp://stratum.slushpool.com:3333',
        status: 'alive',
        active: true,
        last_share_ts: NOW - 3000,
        accepted: 15120,
        rejected: 14,
        stale: 2,
        get_failures: 0,
        remote_failures: 0,
      },
      {
        url: 'stratum+tcp://eu.stratum.slushpool.com:3333',
        status: 'alive',
        active: false,
        accepted: 0,
        rejected: 0,
        stale: 0,
        get_failures: 0,
        remote_failures: 0,
      },
      {
        url: 'stratum+tcp://us-east.stratum.slushpool.com:3333',
        status: 'dead',
        active: false,
        accepted: 0,
        rejected: 0,
        stale: 0,
        get_failures: 3,
        remote_failures: 0,
      },
    ]);
    expect(s.flags).toEqual(['reply_repaired', 'devs_unavailable']);
  });

  it('antminer/cgminer-1.0.0-s19pro: multi-command, "62-67-72-77" ranges, x chips, missing comma', async () => {
    const { sample: s, asked } = await readFixture('antminer/cgminer-1.0.0-s19pro');
    expect(asked).toEqual(['summary+stats+pools+devs']);
    expect(s.hashrate_hs).toBeCloseTo(110234.56e9, -3);
    expect(s.hashrate_ideal_hs).toBeCloseTo(110000e9, -3);
    expect(s.accepted).toBe(42010); // sent as "42010.0000"
    expect(s.rejected).toBe(37);
    expect(s.stale).toBe(5);
    expect(s.uptime_s).toBe(172800);
    expect(s.boards?.map((b) => [b.board, b.ok, b.chips_seen, b.chips_expected, b.temp_c, b.hw_errors])).toEqual([
      ['1', true, 114, 114, 77, 30],
      ['2', true, 114, 114, 78, 21],
      ['3', true, 112, 114, 76, 45],
    ]);
    expect(s.boards?.[2]?.hashrate_hs).toBeCloseTo(36447.42e9, -3);
    expect(s.temps?.slice(0, 2)).toEqual([
      { sensor: 'board1.chip', temp_c: 77 },
      { sensor: 'board1.pcb', temp_c: 55 },
    ]);
    expect(s.fans).toEqual([
      { fan: 'fan1', rpm: 5400 },
      { fan: 'fan2', rpm: 5460 },
      { fan: 'fan3', rpm: 5400 },
      { fan: 'fan4', rpm: 5520 },
    ]);
    expect(s.pools?.[0]).toMatchObject({ status: 'alive', active: true, last_share_ts: NOW - 7000, get_failures: 1 });
    expect(s.flags).toEqual(['reply_repaired']);
  });

  it('antminer/cgminer-4.11.1-s19jpro: modern STATS[0].chain[], dead board, stopped fan, epoch share time', async () => {
    const { sample: s } = await readFixture('antminer/cgminer-4.11.1-s19jpro');
    expect(s.hashrate_hs).toBeCloseTo(104012.33e9, -3);
    expect(s.hashrate_ideal_hs).toBeCloseTo(104000e9, -3);
    expect(s.boards).toEqual([
      { board: '0', ok: true, chips_seen: 126, chips_expected: 126, hashrate_hs: 34702.1e9, temp_c: 71, hw_errors: 1 },
      { board: '1', ok: true, chips_seen: 125, chips_expected: 126, hashrate_hs: 34655.8e9, temp_c: 72, hw_errors: 2 },
      { board: '2', ok: false, chips_seen: 0, chips_expected: 126, hashrate_hs: 0, hw_errors: 0 },
    ]);
    expect(s.fans).toEqual([
      { fan: 'fan0', rpm: 4680 },
      { fan: 'fan1', rpm: 4740 },
      { fan: 'fan2', rpm: 4680 },
      { fan: 'fan3', rpm: 0 },
    ]);
    expect(s.pools?.map((p) => [p.status, p.active, p.last_share_ts, p.remote_failures])).toEqual([
      ['alive', true, 1672531196000, 0],
      ['rejecting', false, undefined, 2],
    ]);
    expect(s.flags).toBeUndefined();
  });

  it('braiins/bosminer-plus-22.08: boards from devs, power from tunerstatus, fans and temps commands', async () => {
    const { sample: s, asked } = await readFixture('braiins/bosminer-plus-22.08');
    expect(asked).toContain('tunerstatus');
    expect(s.hashrate_hs).toBeCloseTo(94102321.55e6, -3);
    expect(s.hashrate_avg_hs).toBeCloseTo(93715437.12e6, -3);
    expect(s.power_w).toBe(3156);
    expect(s.power_source).toBe('rig');
    expect(s.boards?.map((b) => [b.board, b.ok, b.temp_c])).toEqual([
      ['1', true, 66.5],
      ['2', true, 68.25],
      ['3', true, 65],
    ]);
    expect(s.boards?.[0]?.hashrate_hs).toBeCloseTo(31402110.2e6, -3);
    expect(s.fans?.map((f) => f.rpm)).toEqual([4260, 4320, 4230, 4290]);
    expect(s.temps).toContainEqual({ sensor: 'board2.pcb', temp_c: 50 });
    expect(s.pools?.[0]).toMatchObject({
      url: 'stratum2+tcp://v2.eu.stratum.braiins.com/u95GEReVMjK6k5YqiSFNqqTnKU4ypU2Wm8awa6tmbmDmk1bWt',
      status: 'alive',
      active: true,
      last_share_ts: (1661944600 - 2) * 1000,
    });
    expect(s.accepted).toBe(98213);
    expect(s.uptime_s).toBe(91234);
  });

  it('luxos/luxminer-2024.5: power command, two-value temp_chip ranges, epoch-seconds string', async () => {
    const { sample: s } = await readFixture('luxos/luxminer-2024.5');
    expect(s.power_w).toBe(3127);
    expect(s.boards?.map((b) => [b.board, b.chips_seen, b.temp_c])).toEqual([
      ['1', 126, 72],
      ['2', 126, 74],
      ['3', 126, 71],
    ]);
    expect(s.hashrate_ideal_hs).toBeCloseTo(104000e9, -3);
    expect(s.pools?.[0]?.last_share_ts).toBe((1716370805 - 11) * 1000);
    expect(s.fans).toHaveLength(4);
  });

  it('whatsminer/btminer-m30s: Power_RT, HS RT/Factory GHS, Effective Chips, error codes, repeated key', async () => {
    const { sample: s } = await readFixture('whatsminer/btminer-m30s');
    expect(s.hashrate_hs).toBeCloseTo(85123456.11e6, -3);
    expect(s.hashrate_ideal_hs).toBe(86000e9);
    expect(s.power_w).toBe(3351);
    expect(s.uptime_s).toBe(7263);
    expect(s.fans).toEqual([
      { fan: 'fan_in', rpm: 4320 },
      { fan: 'fan_out', rpm: 4290 },
    ]);
    expect(s.temps).toContainEqual({ sensor: 'env', temp_c: 28.5 });
    expect(s.boards?.map((b) => [b.board, b.ok, b.chips_seen, b.chips_expected, b.temp_c])).toEqual([
      ['0', true, 148, 148, 81],
      ['1', true, 148, 148, 82.31],
      ['2', true, 147, 148, 80.5],
    ]);
    expect(s.firmware_errors?.map((e) => [e.code, e.kind])).toEqual([
      ['110', 'fan'],
      ['2010', 'network'],
      ['5070', 'board'],
    ]);
    expect(s.pools?.map((p) => p.active)).toEqual([true, false]);
  });
});

describe('axeos fixtures', () => {
  let server: http.Server;
  let port = 0;
  let body: Buffer = Buffer.alloc(0);
  beforeEach(async () => {
    server = http.createServer((req, res) => {
      if (req.url === '/api/system/info') res.writeHead(200, { 'content-type': 'application/json' }).end(body);
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    port = (server.address() as net.AddressInfo).port;
  });
  afterEach(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('bitaxe/axeos-2.4.2-gamma: field by field', async () => {
    body = readFileSync(`${FIXTURES}bitaxe/axeos-2.4.2-gamma/api-system-info.json`);
    const target: RigTarget = {
      id: 'bx',
      api: 'axeos',
      host: '127.0.0.1',
      port,
      model: 'x',
      nominal_hashrate_hs: 1e12,
    };
    const s = valid(await axeosReader.poll(target, new AbortController().signal, { timeoutMs: 2000, now: () => NOW }));
    expect(s).toEqual({
      rig: 'bx',
      ts: NOW,
      reachable: true,
      hashrate_hs: 1185.4021345e9,
      hashrate_ideal_hs: 1239e9,
      power_w: 17.912500381469727,
      power_source: 'rig',
      temps: [
        { sensor: 'asic', temp_c: 58.375 },
        { sensor: 'vr', temp_c: 51 },
      ],
      fans: [{ fan: 'fan0', rpm: 4218 }],
      boards: [{ board: '0', ok: true, chips_expected: 1, hashrate_hs: 1185.4021345e9, temp_c: 58.375 }],
      accepted: 14321,
      rejected: 12,
      uptime_s: 401234,
      pools: [
        { url: 'stratum+tcp://public-pool.io:21496', status: 'unknown', active: true },
        { url: 'stratum+tcp://solo.ckpool.org:3333', status: 'unknown', active: false },
      ],
    });
  });
});
