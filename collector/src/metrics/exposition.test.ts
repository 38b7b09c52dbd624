import { describe, expect, it } from 'vitest';
import {
  addHistogram,
  ExpositionWriter,
  encode,
  encodeLabels,
  escapeHelp,
  escapeLabelValue,
  Family,
  formatValue,
  labelPairs,
  NO_LABELS,
} from './exposition.js';
import { LatencyHistogram } from './histogram.js';

/** The sample lines a writer holds (page without comments), for assertions. */
function lines(out: ExpositionWriter): string[] {
  return out
    .toString()
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('#'));
}

describe('exposition writer', () => {
  it('escapes label values and help text as the text format requires', () => {
    expect(escapeLabelValue('plain-id.0:1')).toBe('plain-id.0:1');
    expect(escapeLabelValue('a"b\\c\nd')).toBe('a\\"b\\\\c\\nd');
    expect(escapeHelp('x\\y\nz "q"')).toBe('x\\\\y\\nz "q"');
    expect(
      labelPairs([
        ['site', 'a'],
        ['model', 'S19 "Pro"'],
      ]),
    ).toBe('site="a",model="S19 \\"Pro\\""');
    expect(Buffer.from(encodeLabels([['model', 'é "x"\n']])).toString()).toBe('model="é \\"x\\"\\n"');
  });

  it('formats special float values the way Prometheus parses them', () => {
    expect(formatValue(Number.NaN)).toBe('NaN');
    expect(formatValue(Number.POSITIVE_INFINITY)).toBe('+Inf');
    expect(formatValue(Number.NEGATIVE_INFINITY)).toBe('-Inf');
    expect(formatValue(1.1e14)).toBe('110000000000000');
    expect(formatValue(1e21)).toBe('1e+21');
  });

  it('writes every number into the page exactly as formatValue prints it', () => {
    const values = [
      0,
      -0,
      1,
      -1,
      9,
      10,
      99,
      100,
      0.1,
      1 / 3,
      -2.5e-8,
      1e-7,
      5e-324,
      123456789.123,
      1768478395.123,
      999_999_999_999_999,
      1e15,
      2 ** 31,
      2 ** 53 - 1,
      -(2 ** 53 - 1),
      2 ** 53,
      2 ** 53 + 2,
      9.999999999999999e20,
      1e21,
      -1.7976931348623157e308,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
    ];
    // Plus every power of ten and its neighbours (digit-count edges), and random integers and fractions.
    for (let e = 0; e <= 16; e++) values.push(10 ** e - 1, 10 ** e, 10 ** e + 1, -(10 ** e));
    let seed = 42;
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let i = 0; i < 2000; i++) {
      values.push(Math.floor(random() * 2 ** (1 + (i % 53))), random() * 10 ** ((i % 30) - 10), -random() * 1e6);
    }
    const out = new ExpositionWriter();
    out.family(new Family('hashwatch_x', 'gauge', 'X.'), () => {
      for (const v of values) out.add(NO_LABELS, v);
    });
    expect(lines(out)).toEqual(values.map((v) => `hashwatch_x ${formatValue(v)}`));
  });

  it('writes nothing for an empty family and HELP/TYPE before samples otherwise', () => {
    const out = new ExpositionWriter();
    out.family(new Family('x_total', 'counter', 'never'), () => {});
    expect(out.toString()).toBe('');
    expect(out.length).toBe(0);
    out.family(new Family('hashwatch_x', 'gauge', 'An x.\nSecond line.'), () => {
      out.add(NO_LABELS, 1);
      out.add(encode('a="b"'), 2);
      out.add(encode('a="b"'), 3, encode(',c="d"'));
    });
    out.family(new Family('y_total', 'counter', 'never either'), () => {});
    expect(out.toString()).toBe(
      '# HELP hashwatch_x An x.\\nSecond line.\n# TYPE hashwatch_x gauge\nhashwatch_x 1\nhashwatch_x{a="b"} 2\nhashwatch_x{a="b",c="d"} 3\n',
    );
    expect(out.bytes().equals(Buffer.from(out.toString()))).toBe(true);
  });

  it('grows its buffer as needed and starts over on reset', () => {
    const out = new ExpositionWriter(1);
    const family = new Family('hashwatch_big', 'gauge', 'Big.');
    const labels = encode(`id="${'x'.repeat(3000)}"`);
    const write = () =>
      out.family(family, () => {
        for (let i = 0; i < 100; i++) out.add(labels, i + 0.5);
      });
    write();
    const first = out.toString();
    expect(first.split('\n')).toHaveLength(100 + 2 + 1);
    expect(out.capacity).toBeGreaterThanOrEqual(out.length);
    const capacity = out.capacity;
    out.reset();
    expect(out.length).toBe(0);
    write();
    expect(out.toString()).toBe(first);
    expect(out.capacity).toBe(capacity);
  });

  it('has room for family headers at the end of the buffer', () => {
    const out = new ExpositionWriter(1);
    const expected: string[] = [];
    for (let i = 0; i < 200; i++) {
      const f = new Family(`hashwatch_f${i}`, 'gauge', 'H'.repeat(i * 7));
      out.family(f, () => out.add(NO_LABELS, i));
      expected.push(
        `# HELP hashwatch_f${i} ${'H'.repeat(i * 7)}\n# TYPE hashwatch_f${i} gauge\nhashwatch_f${i} ${i}\n`,
      );
    }
    expect(out.toString()).toBe(expected.join(''));
  });

  it('refuses samples outside a family and nested families', () => {
    const out = new ExpositionWriter();
    const f = new Family('hashwatch_x', 'gauge', 'X.');
    expect(() => out.add(NO_LABELS, 1)).toThrow(/outside family/);
    expect(() => out.family(f, () => out.family(f, () => {}))).toThrow(/inside family/);
    // A family left open by a throwing render is dropped by reset().
    out.reset();
    out.family(f, () => out.add(NO_LABELS, 1));
    expect(out.toString()).toContain('hashwatch_x 1\n');
  });

  it('appends text as UTF-8', () => {
    const out = new ExpositionWriter(1);
    const text = `# HELP x é 🚀\n${'y'.repeat(5000)}\n`;
    out.text(text);
    expect(out.bytes().equals(Buffer.from(text))).toBe(true);
  });

  it('renders a cumulative histogram from LatencyHistogram', () => {
    const h = new LatencyHistogram([0.01, 0.1]);
    for (const s of [0.005, 0.01, 0.05, 3, -1, Number.NaN]) h.observe(s);
    const out = new ExpositionWriter();
    out.family(new Family('hashwatch_d_seconds', 'histogram', 'D.'), () => addHistogram(out, NO_LABELS, h.snapshot()));
    expect(lines(out)).toEqual([
      'hashwatch_d_seconds_bucket{le="0.01"} 2',
      'hashwatch_d_seconds_bucket{le="0.1"} 3',
      'hashwatch_d_seconds_bucket{le="+Inf"} 4',
      'hashwatch_d_seconds_sum 3.065',
      'hashwatch_d_seconds_count 4',
    ]);
    const labelled = new ExpositionWriter();
    labelled.family(new Family('hashwatch_d_seconds', 'histogram', 'D.'), () =>
      addHistogram(labelled, encode('op="commit"'), h.snapshot()),
    );
    expect(lines(labelled)[0]).toBe('hashwatch_d_seconds_bucket{op="commit",le="0.01"} 2');
    expect(lines(labelled)[4]).toBe('hashwatch_d_seconds_count{op="commit"} 4');
  });
});
