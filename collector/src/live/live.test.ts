import { describe, expect, it } from 'vitest';
import { FleetView } from '../fleet/view.js';
import { checkUpgrade, originAllowed } from './auth.js';
import { Ring } from './history.js';
import { incidentHost, matches, projectRig, summarize } from './project.js';
import { parseClientMessage } from './protocol.js';

describe('parseClientMessage', () => {
  const parse = (text: string) => parseClientMessage(text, false, 256);
  it('accepts subscribe to a site, a host, and widening', () => {
    expect(parse('{"type":"subscribe","site":"alpha"}')).toEqual({
      ok: true,
      message: { type: 'subscribe', filter: { site: 'alpha' } },
    });
    expect(parse('{"type":"subscribe","site":"a","host":"h-1"}')).toMatchObject({
      ok: true,
      message: { filter: { site: 'a', host: 'h-1' } },
    });
    expect(parse('{}')).toMatchObject({ ok: true, message: { filter: {} } });
    expect(parse('{"type":"subscribe"}')).toMatchObject({ ok: true, message: { filter: {} } });
  });
  it('rejects everything else with a reason', () => {
    expect(parseClientMessage(Buffer.from('{}'), true, 256)).toMatchObject({ ok: false, reason: 'binary_frame' });
    expect(parse('x'.repeat(300))).toMatchObject({ ok: false, reason: 'too_large' });
    expect(parse('{"type":')).toMatchObject({ ok: false, reason: 'malformed_json' });
    expect(parse('null')).toMatchObject({ ok: false, reason: 'not_object' });
    expect(parse('"subscribe"')).toMatchObject({ ok: false, reason: 'not_object' });
    expect(parse('{"type":"delete"}')).toMatchObject({ ok: false, reason: 'unknown_type' });
    expect(parse('{"type":"subscribe","site":"../x"}')).toMatchObject({ ok: false, reason: 'bad_filter' });
    expect(parse('{"type":"subscribe","site":7}')).toMatchObject({ ok: false, reason: 'bad_filter' });
    expect(parse('{"type":"subscribe","host":"h"}')).toMatchObject({ ok: false, reason: 'bad_filter' });
    expect(parse('{"type":"subscribe","site":"a","rig":"r"}')).toMatchObject({ ok: false, reason: 'bad_filter' });
  });
});

describe('Ring', () => {
  it('keeps the newest items, oldest first, never more than its capacity', () => {
    const r = new Ring<number>(3);
    expect(r.toArray()).toEqual([]);
    for (let i = 1; i <= 7; i++) r.push(i);
    expect(r.toArray()).toEqual([5, 6, 7]);
    expect(r.size).toBe(3);
    expect(() => new Ring(0)).toThrow(RangeError);
  });
});

describe('upgrade policy', () => {
  const url = (q = '') => new URL(`http://127.0.0.1/live${q}`);
  it('checks origin against the host unless a list is given', () => {
    expect(originAllowed('http://127.0.0.1:8080', '127.0.0.1:8080', undefined)).toBe(true);
    expect(originAllowed('http://evil.example', '127.0.0.1:8080', undefined)).toBe(false);
    expect(originAllowed('not a url', '127.0.0.1:8080', [])).toBe(false);
    expect(originAllowed('https://ops.example.com', 'x', ['https://ops.example.com/'])).toBe(true);
    expect(originAllowed('https://other.example.com', 'x', ['*'])).toBe(true);
  });
  it('needs the token from the header or the query', () => {
    const policy = { token: 'abc' };
    expect(checkUpgrade({}, url(), policy)).toMatchObject({ ok: false, status: 401 });
    expect(checkUpgrade({ authorization: 'Bearer abd' }, url(), policy)).toMatchObject({ ok: false, status: 401 });
    expect(checkUpgrade({ authorization: 'Bearer abc' }, url(), policy)).toEqual({ ok: true });
    expect(checkUpgrade({}, url('?token=abc'), policy)).toEqual({ ok: true });
    expect(checkUpgrade({ origin: 'http://evil', host: 'h' }, url('?token=abc'), policy)).toMatchObject({
      status: 403,
    });
  });
});

describe('projections', () => {
  it('derives rig figures and the deficit by cause', () => {
    const view = new FleetView();
    const now = 1_700_000_000_000;
    view.upsertRig('a', 'h', 'r1', { state: 'ok', expectedHashrateHs: 100 }, now);
    view.upsertRig('a', 'h', 'r2', { state: 'hardware_fault', expectedHashrateHs: 100 }, now);
    view.recordSample(
      'a',
      'h',
      {
        rig: 'r2',
        ts: now,
        reachable: true,
        hashrate_hs: 30,
        boards: [
          { board: '0', ok: true, temp_c: 60 },
          { board: '1', ok: false },
        ],
        temps: [{ sensor: 's', temp_c: 75 }],
        pools: [
          { url: 'a', status: 'dead', active: false },
          { url: 'b', status: 'alive', active: true },
        ],
      },
      now,
    );
    expect(projectRig(view.getRig('a', 'h', 'r2')!)).toMatchObject({
      hashrateHs: 30,
      maxTempC: 75,
      boardsOk: 1,
      boardsTotal: 2,
      poolConnected: true,
    });
    expect(projectRig(view.getRig('a', 'h', 'r1')!)).toMatchObject({ hashrateHs: null, poolConnected: null });
    const point = summarize(view, now);
    expect(point.sites[0]?.deficitHsByCause).toEqual({ hardware_fault: 70 });
  });
  it('matches filters and incident scopes', () => {
    expect(matches({}, 'a', 'h')).toBe(true);
    expect(matches({ site: 'a' }, 'b')).toBe(false);
    expect(matches({ site: 'a', host: 'h' }, 'a', 'g')).toBe(false);
    expect(matches({ site: 'a', host: 'h' }, 'a')).toBe(true);
    expect(incidentHost({ scope: 'rig', scopeId: 'a/h/r' })).toBe('h');
    expect(incidentHost({ scope: 'site', scopeId: 'a' })).toBeUndefined();
  });
});
