import { afterEach, describe, expect, it, vi } from 'vitest';
import { exampleReport, exampleRigSample } from './fixtures.js';
import type { Report } from './schemas.js';
import { parseReportJson, SLICE_ABOVE_BYTES } from './sliced-json.js';
import { decode } from './validate.js';

const NOW = Date.UTC(2026, 11, 6, 12, 0, 0);

/** What JSON.parse of the whole text gives: the value, or the SyntaxError's message. */
function whole(bytes: Buffer): { value: unknown } | { error: string } {
  try {
    return { value: JSON.parse(bytes.toString('utf8')) };
  } catch (err) {
    return { error: (err as Error).message };
  }
}

function sliced(bytes: Buffer): { value: unknown } | { error: string } {
  try {
    return { value: parseReportJson(bytes) };
  } catch (err) {
    return { error: (err as Error).message };
  }
}

function largeReport(rigs: number): Report {
  return exampleReport(NOW, rigs);
}

/** The longest string JSON.parse was given while `fn` ran. */
function longestParsed(fn: () => void): number {
  const spy = vi.spyOn(JSON, 'parse');
  try {
    fn();
    return Math.max(...spy.mock.calls.map(([text]) => text.length));
  } finally {
    spy.mockRestore();
  }
}

/** The report with its rigs moved from `rigs` (left empty) to a member `x` after the probes. */
function movedRigs(text: string): string {
  const start = text.indexOf('"rigs":[') + '"rigs":['.length;
  const end = text.indexOf('],"probes"');
  return `${text.slice(0, start)}${text.slice(end, -1)},"x":[${text.slice(start, end)}]}`;
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('parseReportJson', () => {
  it('parses a large report without one string above the large-object size, to the same value', () => {
    const bytes = Buffer.from(JSON.stringify(largeReport(500)));
    expect(bytes.byteLength).toBeGreaterThan(3 * SLICE_ABOVE_BYTES);
    let value: unknown;
    const longest = longestParsed(() => {
      value = parseReportJson(bytes);
    });
    expect(longest).toBeLessThan(SLICE_ABOVE_BYTES);
    expect(value).toStrictEqual(JSON.parse(bytes.toString('utf8')));
  });

  it('slices when the head holds strings with escaped quotes and brackets', () => {
    const text = JSON.stringify(largeReport(300)).replace('"boot_id":"', '"boot_id":"\\"{[\\\\');
    const bytes = Buffer.from(text);
    let value: unknown;
    const longest = longestParsed(() => {
      value = parseReportJson(bytes);
    });
    expect(longest).toBeLessThan(SLICE_ABOVE_BYTES);
    expect(value).toStrictEqual(JSON.parse(text));
  });

  it('decode() takes the sliced path for reports and still validates what it parsed', () => {
    const report = largeReport(400);
    const bytes = Buffer.from(JSON.stringify(report));
    let decoded: ReturnType<typeof decode> | undefined;
    const longest = longestParsed(() => {
      decoded = decode('report', bytes, NOW);
    });
    expect(longest).toBeLessThan(SLICE_ABOVE_BYTES);
    expect(decoded).toEqual({ ok: true, value: report });

    const bad = largeReport(400);
    (bad.rigs[399] as { hashrate_hs: unknown }).hashrate_hs = 'fast';
    const rejected = decode('report', Buffer.from(JSON.stringify(bad)), NOW);
    expect(rejected.ok).toBe(false);
    if (!rejected.ok) expect(rejected.error.field).toBe('/rigs/399/hashrate_hs');
  });

  it('leaves small reports to one JSON.parse', () => {
    const bytes = Buffer.from(JSON.stringify(largeReport(3)));
    const spy = vi.spyOn(JSON, 'parse');
    parseReportJson(bytes);
    expect(spy).toHaveBeenCalledTimes(1);
  });

  // Each case is valid JSON whose structure a careless slicer would get wrong, or invalid JSON whose
  // error must be JSON.parse's own.
  const base = JSON.stringify(largeReport(300));
  const tricky: Array<[string, string]> = [
    ['a later top-level rigs overrides the first', `${base.slice(0, -1)},"rigs":[]}`],
    ['a later rigs spelled with an escape', `${base.slice(0, -1)},"rig\\u0073":[1]}`],
    ['rigs nested before the top-level one', base.replace('{"v":1,', '{"v":1,"x":{"rigs":[{"rig":"a"},{"rig":"b"}]},')],
    [
      'the only `"rigs":[` nested, the top-level rigs spelled with an escape',
      base.replace('"rigs":[', '"rig\\u0073":[],"x":{"rigs":[').replace('],"probes"', ']},"probes"'),
    ],
    ['a rig-keyed object nested in boards', base.replaceAll('{"board":"1"', '{"rig":"1","board":"1"')],
    ['the cut pattern inside strings', base.replaceAll('"url":"', '"url":"},{\\"rig\\":\\"')],
    ['a string holding `"rigs":[` escaped', base.replace('"boot_id":"', '"boot_id":"\\"rigs\\":[')],
    ['non-ASCII text in every rig', base.replaceAll('"rig-', '"rig-ü€😀')],
    ['truncated', base.slice(0, base.length - 20)],
    ['truncated in the middle', base.slice(0, Math.floor(base.length / 2))],
    ['an unescaped quote in a rig id', base.replace('"rig-150"', '"rig-"150"')],
    ['a stray bracket between rigs', base.replace('},{"rig":"rig-200"', '}],{"rig":"rig-200"')],
    ['whitespace around the member', base.replace('"rigs":[', '"rigs" : [ ')],
    ['an empty rigs array, the rigs in a later member', movedRigs(base)],
    ['a top-level array', `[${base}]`],
  ];
  it.each(tricky)('gives what JSON.parse gives: %s', (_name, text) => {
    const bytes = Buffer.from(text);
    expect(bytes.byteLength).toBeGreaterThan(SLICE_ABOVE_BYTES);
    expect(sliced(bytes)).toStrictEqual(whole(bytes));
  });

  it('gives what JSON.parse gives for randomly damaged large reports', () => {
    // mulberry32, seeded: a failure replays
    let seed = 20261206;
    const random = (): number => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const alphabet = ['{', '}', '[', ']', ',', '"', '\\', ':', ' ', '0', 'é', '},{"rig":"', '"rigs":['];
    let parsedAlike = 0;
    for (let round = 0; round < 200; round++) {
      const rigs = 150 + Math.floor(random() * 300);
      const report = largeReport(rigs);
      for (const sample of report.rigs) if (random() < 0.1) sample.error = { kind: 'timeout', message: '},{"rig":"x' };
      let text = JSON.stringify(report);
      const edits = Math.floor(random() * 3);
      for (let e = 0; e < edits; e++) {
        const at = Math.floor(random() * text.length);
        const what = alphabet[Math.floor(random() * alphabet.length)] as string;
        text = random() < 0.5 ? text.slice(0, at) + what + text.slice(at) : text.slice(0, at) + text.slice(at + 1);
      }
      const bytes = Buffer.from(text);
      const expected = whole(bytes);
      expect(sliced(bytes)).toStrictEqual(expected);
      if ('value' in expected) parsedAlike++;
    }
    // Both outcomes are exercised: unedited reports parse, most damaged ones do not.
    expect(parsedAlike).toBeGreaterThan(40);
    expect(parsedAlike).toBeLessThan(200);
  });

  it('keeps a sample exactly as sent, error text included', () => {
    const report = largeReport(200);
    report.rigs[100] = {
      ...exampleRigSample(NOW, 'rig-x'),
      reachable: false,
      error: { kind: 'timeout', message: 'reset\n\t"},{"rig":"' },
    };
    const bytes = Buffer.from(JSON.stringify(report));
    expect(parseReportJson(bytes)).toStrictEqual(report);
  });
});
