import { describe, expect, it } from 'vitest';
import {
  agentTopic,
  COLLECTOR_STATE_TOPIC,
  decode,
  encode,
  exampleAck,
  exampleBirth,
  exampleCollectorState,
  exampleCommands,
  exampleReport,
  exampleState,
  LIMITS,
  type MessageKind,
  type ProtocolErrorCode,
  parseTopic,
  topicFilter,
} from './index.js';

const NOW = Date.UTC(2026, 10, 25, 12, 0, 0);

describe('valid messages round-trip', () => {
  const cases: Array<[MessageKind, unknown]> = [
    ['report', exampleReport(NOW, 3)],
    ['report', { ...exampleReport(NOW, 0), historical: true }],
    ['birth', exampleBirth(NOW)],
    ['state', exampleState(NOW)],
    ['state', { v: 1, boot_id: 'abcdefgh', conn: 0, ts: NOW, status: 'online' }],
    ['ack', exampleAck(NOW)],
    ['cmd', exampleCommands(NOW)[0]],
    ['cmd', exampleCommands(NOW)[1]],
    ['collector_state', exampleCollectorState(NOW)],
  ];
  it.each(cases)('%s', (kind, msg) => {
    const wire = encode(kind, msg as never, NOW);
    expect(wire.ok).toBe(true);
    if (!wire.ok) return;
    const back = decode(kind, Buffer.from(wire.value), NOW);
    expect(back).toEqual({ ok: true, value: msg });
  });

  it('accepts a report at the rig limit', () => {
    const big = exampleReport(NOW, LIMITS.maxRigsPerReport);
    const wire = JSON.stringify(big);
    expect(Buffer.byteLength(wire)).toBeLessThanOrEqual(LIMITS.maxPayloadBytes);
    expect(decode('report', wire, NOW).ok).toBe(true);
  });
});

type Mutator = (r: Record<string, unknown>) => unknown;

function report(): Record<string, unknown> {
  return structuredClone(exampleReport(NOW, 2)) as unknown as Record<string, unknown>;
}
function rig0(r: Record<string, unknown>): Record<string, unknown> {
  return (r.rigs as Record<string, unknown>[])[0] as Record<string, unknown>;
}
function set(mut: (r: Record<string, unknown>) => void): Mutator {
  return (r) => {
    mut(r);
    return r;
  };
}

/** [name, raw payload or mutation of a valid report, expected code, expected field] */
const badReports: Array<[string, string | Mutator, ProtocolErrorCode, string]> = [
  ['empty payload', '', 'HW_ERR_PAYLOAD_EMPTY', ''],
  ['truncated JSON', '{"v":1,"boot_id":"abc', 'HW_ERR_MALFORMED_JSON', ''],
  ['NaN literal', '{"v":1,"seq":NaN}', 'HW_ERR_MALFORMED_JSON', ''],
  ['Infinity literal', '{"v":1,"seq":Infinity}', 'HW_ERR_MALFORMED_JSON', ''],
  ['trailing garbage', `${JSON.stringify(exampleReport(NOW))}xx`, 'HW_ERR_MALFORMED_JSON', ''],
  ['JSON array', '[1,2,3]', 'HW_ERR_NOT_OBJECT', ''],
  ['JSON string', '"report"', 'HW_ERR_NOT_OBJECT', ''],
  ['JSON null', 'null', 'HW_ERR_NOT_OBJECT', ''],
  ['oversized payload', `{"pad":"${'x'.repeat(LIMITS.maxPayloadBytes)}"}`, 'HW_ERR_PAYLOAD_TOO_LARGE', ''],
  [
    'wrong version',
    set((r) => {
      r.v = 2;
    }),
    'HW_ERR_UNSUPPORTED_VERSION',
    '/v',
  ],
  [
    'missing boot_id',
    set((r) => {
      delete r.boot_id;
    }),
    'HW_ERR_SCHEMA',
    '/boot_id',
  ],
  [
    'missing rigs',
    set((r) => {
      delete r.rigs;
    }),
    'HW_ERR_SCHEMA',
    '/rigs',
  ],
  [
    'seq as string',
    set((r) => {
      r.seq = '7';
    }),
    'HW_ERR_SCHEMA',
    '/seq',
  ],
  [
    'negative seq',
    set((r) => {
      r.seq = -1;
    }),
    'HW_ERR_SCHEMA',
    '/seq',
  ],
  [
    'fractional seq',
    set((r) => {
      r.seq = 1.5;
    }),
    'HW_ERR_SCHEMA',
    '/seq',
  ],
  [
    'seq beyond 2^53',
    set((r) => {
      r.seq = 2 ** 60;
    }),
    'HW_ERR_SCHEMA',
    '/seq',
  ],
  [
    'huge number overflowing to Infinity',
    (r) => JSON.stringify(r).replace('"power_w":3250', '"power_w":1e400'),
    'HW_ERR_SCHEMA',
    '/rigs/0/power_w',
  ],
  [
    'negative power',
    set((r) => {
      rig0(r).power_w = -5;
    }),
    'HW_ERR_SCHEMA',
    '/rigs/0/power_w',
  ],
  [
    'absurd hashrate',
    set((r) => {
      rig0(r).hashrate_hs = 1e30;
    }),
    'HW_ERR_SCHEMA',
    '/rigs/0/hashrate_hs',
  ],
  [
    'hashrate as string',
    set((r) => {
      rig0(r).hashrate_hs = '110 TH/s';
    }),
    'HW_ERR_SCHEMA',
    '/rigs/0/hashrate_hs',
  ],
  [
    'temperature below absolute sense',
    set((r) => {
      (rig0(r).temps as { temp_c: number }[])[0]!.temp_c = -300;
    }),
    'HW_ERR_SCHEMA',
    '/rigs/0/temps/0/temp_c',
  ],
  [
    'reachable missing',
    set((r) => {
      delete rig0(r).reachable;
    }),
    'HW_ERR_SCHEMA',
    '/rigs/0/reachable',
  ],
  [
    'unknown field',
    set((r) => {
      rig0(r).colour = 'red';
    }),
    'HW_ERR_SCHEMA',
    '/rigs/0/colour',
  ],
  [
    'prototype pollution key',
    (r) => JSON.stringify(r).replace('{"v":1', '{"__proto__":{"admin":true},"v":1'),
    'HW_ERR_SCHEMA',
    '/__proto__',
  ],
  [
    'constructor key in a rig',
    (r) => JSON.stringify(r).replace('{"rig":"rig-01"', '{"constructor":{"prototype":{}},"rig":"rig-01"'),
    'HW_ERR_SCHEMA',
    '/rigs/0/constructor',
  ],
  [
    'too many rigs',
    set((r) => {
      r.rigs = Array.from({ length: LIMITS.maxRigsPerReport + 1 }, () => ({}));
    }),
    'HW_ERR_SCHEMA',
    '/rigs',
  ],
  [
    'too many temperature sensors',
    set((r) => {
      rig0(r).temps = Array.from({ length: 65 }, (_, i) => ({ sensor: `s${i}`, temp_c: 50 }));
    }),
    'HW_ERR_SCHEMA',
    '/rigs/0/temps',
  ],
  [
    'oversized error message',
    set((r) => {
      rig0(r).error = { kind: 'timeout', message: 'x'.repeat(LIMITS.maxTextLength + 1) };
    }),
    'HW_ERR_SCHEMA',
    '/rigs/0/error/message',
  ],
  [
    'unknown poll error kind',
    set((r) => {
      rig0(r).error = { kind: 'gremlins', message: 'x' };
    }),
    'HW_ERR_SCHEMA',
    '/rigs/0/error/kind',
  ],
  [
    'rig id with slash',
    set((r) => {
      rig0(r).rig = '../etc/passwd';
    }),
    'HW_ERR_SCHEMA',
    '/rigs/0/rig',
  ],
  [
    'rig id with SQL',
    set((r) => {
      rig0(r).rig = "x'; DROP TABLE samples;--";
    }),
    'HW_ERR_SCHEMA',
    '/rigs/0/rig',
  ],
  [
    'boot_id with wildcard',
    set((r) => {
      r.boot_id = 'abcdefgh#';
    }),
    'HW_ERR_SCHEMA',
    '/boot_id',
  ],
  [
    'timestamp as ISO string',
    set((r) => {
      r.ts = '2026-11-25T12:00:00Z';
    }),
    'HW_ERR_SCHEMA',
    '/ts',
  ],
  [
    'timestamp in seconds',
    set((r) => {
      r.ts = Math.floor(NOW / 1000);
    }),
    'HW_ERR_SCHEMA',
    '/ts',
  ],
  [
    'timestamp far in the future',
    set((r) => {
      r.ts = NOW + 30 * 24 * 3600_000;
    }),
    'HW_ERR_TS_OUT_OF_RANGE',
    '/ts',
  ],
  [
    'rig timestamp far in the future',
    set((r) => {
      rig0(r).ts = NOW + 2 * 24 * 3600_000;
    }),
    'HW_ERR_TS_OUT_OF_RANGE',
    '/rigs/0/ts',
  ],
  [
    'timestamp older than the spool can hold',
    set((r) => {
      r.ts = NOW - 500 * 24 * 3600_000;
    }),
    'HW_ERR_TS_OUT_OF_RANGE',
    '/ts',
  ],
  [
    'same rig twice',
    set((r) => {
      (r.rigs as unknown[]).push(structuredClone(rig0(r)));
    }),
    'HW_ERR_DUPLICATE_RIG',
    '/rigs/2',
  ],
  [
    'probe loss above 1',
    set((r) => {
      (r.probes as { loss_ratio: number }[])[0]!.loss_ratio = 1.5;
    }),
    'HW_ERR_SCHEMA',
    '/probes/0/loss_ratio',
  ],
  [
    'unknown probe role',
    set((r) => {
      (r.probes as { role: string }[])[0]!.role = 'moon';
    }),
    'HW_ERR_SCHEMA',
    '/probes/0/role',
  ],
  [
    'pool status misspelt',
    set((r) => {
      (rig0(r).pools as { status: string }[])[0]!.status = 'Alive';
    }),
    'HW_ERR_SCHEMA',
    '/rigs/0/pools/0/status',
  ],
  [
    'interval below one second',
    set((r) => {
      r.interval_ms = 10;
    }),
    'HW_ERR_SCHEMA',
    '/interval_ms',
  ],
  ['deeply nested junk', `{"v":1,"rigs":${'['.repeat(5000)}${']'.repeat(5000)}}`, 'HW_ERR_SCHEMA', '/boot_id'],
];

describe('bad reports are rejected with a reason that names the field', () => {
  it('has at least 30 distinct cases', () => {
    expect(new Set(badReports.map(([name]) => name)).size).toBeGreaterThanOrEqual(30);
  });
  it.each(badReports)('%s', (_name, input, code, field) => {
    const payload =
      typeof input === 'string'
        ? input
        : (() => {
            const out = input(report());
            return typeof out === 'string' ? out : JSON.stringify(out);
          })();
    const result = decode('report', payload, NOW);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error.code).toBe(code);
    expect(result.error.field).toBe(field);
    expect(result.error.message.length).toBeGreaterThan(10);
    if (field !== '') expect(result.error.message).toContain(field);
  });
  it('does not let a __proto__ key pollute Object.prototype', () => {
    decode('report', '{"__proto__":{"polluted":true}}', NOW);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('other kinds reject bad input too', () => {
  it('rejects a birth with a rig listed twice', () => {
    const birth = exampleBirth(NOW);
    birth.rigs.push(birth.rigs[0]!);
    const r = decode('birth', JSON.stringify(birth), NOW);
    expect(r.ok ? null : r.error).toMatchObject({ code: 'HW_ERR_DUPLICATE_RIG', field: '/rigs/2' });
  });
  it('rejects a state with an unknown reason', () => {
    const r = decode('state', JSON.stringify({ ...exampleState(NOW), reason: 'bored' }), NOW);
    expect(r.ok ? null : r.error).toMatchObject({ code: 'HW_ERR_SCHEMA', field: '/reason' });
  });
  it('rejects an unknown command', () => {
    const r = decode('cmd', JSON.stringify({ v: 1, ts: NOW, cmd: 'reboot' }), NOW);
    expect(r.ok ? null : r.error).toMatchObject({ code: 'HW_ERR_SCHEMA', field: '/cmd' });
  });
  it('rejects a resend without from_seq', () => {
    const r = decode('cmd', JSON.stringify({ v: 1, ts: NOW, cmd: 'resend', boot_id: 'abcdefgh' }), NOW);
    expect(r.ok ? null : r.error).toMatchObject({ code: 'HW_ERR_SCHEMA', field: '/from_seq' });
  });
  it('rejects an ack whose range is not a pair', () => {
    const r = decode(
      'ack',
      JSON.stringify({ v: 1, ts: NOW, acks: [{ boot_id: 'abcdefgh', ranges: [[1, 2, 3]] }] }),
      NOW,
    );
    expect(r.ok ? null : r.error).toMatchObject({ code: 'HW_ERR_SCHEMA', field: '/acks/0/ranges/0' });
  });
});

describe('topics', () => {
  it('builds and parses every kind', () => {
    for (const kind of ['birth', 'state', 'report', 'ack', 'cmd'] as const) {
      const topic = agentTopic('kz-ekibastuz', 'host-07', kind);
      expect(topic).toBe(`hw/v1/kz-ekibastuz/host-07/${kind}`);
      expect(parseTopic(topic)).toEqual({ ok: true, value: { site: 'kz-ekibastuz', host: 'host-07', kind } });
    }
  });
  it('builds filters, shared or not', () => {
    expect(topicFilter('report')).toBe('hw/v1/+/+/report');
    expect(topicFilter('report', { site: 'a' })).toBe('hw/v1/a/+/report');
    expect(topicFilter('state', { shareGroup: 'collectors' })).toBe('$share/collectors/hw/v1/+/+/state');
    expect(() => topicFilter('report', { site: '+' })).toThrow(/Invalid site name/);
  });
  it('refuses to build topics from names that would break the tree', () => {
    for (const bad of ['+', '#', 'a/b', 'A', '', '-x', 'x'.repeat(64), 'sp ace', 'ü']) {
      expect(() => agentTopic(bad, 'h', 'report'), bad).toThrow(/Invalid site name/);
      expect(() => agentTopic('s', bad, 'report'), bad).toThrow(/Invalid host name/);
    }
  });
  const badTopics: Array<[string, ProtocolErrorCode, string]> = [
    ['hw/v1/+/h/report', 'HW_ERR_BAD_NAME', 'site'],
    ['hw/v1/s/#/report', 'HW_ERR_BAD_NAME', 'host'],
    ['hw/v1/s/h/x/report', 'HW_ERR_BAD_TOPIC', ''],
    ['hw/v1/s/h', 'HW_ERR_BAD_TOPIC', ''],
    ['hw/v2/s/h/report', 'HW_ERR_BAD_TOPIC', ''],
    ['hw/v1/S/h/report', 'HW_ERR_BAD_NAME', 'site'],
    ['hw/v1/s//report', 'HW_ERR_BAD_NAME', 'host'],
    ['hw/v1/s/h/delete', 'HW_ERR_BAD_TOPIC', 'kind'],
    [COLLECTOR_STATE_TOPIC, 'HW_ERR_BAD_TOPIC', ''],
    [`hw/v1/${'a'.repeat(300)}/h/report`, 'HW_ERR_BAD_TOPIC', ''],
  ];
  it.each(badTopics)('rejects %s', (topic, code, field) => {
    const r = parseTopic(topic);
    expect(r.ok ? null : r.error).toMatchObject({ code, field });
  });
});
