import { describe, expect, it } from 'vitest';
import { addHistogram, escapeHelp, escapeLabelValue, Family, formatValue, labelPairs } from './exposition.js';
import { LatencyHistogram } from './histogram.js';

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
  });

  it('formats special float values the way Prometheus parses them', () => {
    expect(formatValue(Number.NaN)).toBe('NaN');
    expect(formatValue(Number.POSITIVE_INFINITY)).toBe('+Inf');
    expect(formatValue(Number.NEGATIVE_INFINITY)).toBe('-Inf');
    expect(formatValue(1.1e14)).toBe('110000000000000');
    expect(formatValue(1e21)).toBe('1e+21');
  });

  it('writes nothing for an empty family and HELP/TYPE before samples otherwise', () => {
    expect(new Family('x_total', 'counter', 'never').text()).toBe('');
    const f = new Family('hashwatch_x', 'gauge', 'An x.\nSecond line.');
    f.add('', 1);
    f.add('a="b"', 2);
    expect(f.size).toBe(2);
    expect(f.text()).toBe(
      '# HELP hashwatch_x An x.\\nSecond line.\n# TYPE hashwatch_x gauge\nhashwatch_x 1\nhashwatch_x{a="b"} 2\n',
    );
  });

  it('renders a cumulative histogram from LatencyHistogram', () => {
    const h = new LatencyHistogram([0.01, 0.1]);
    for (const s of [0.005, 0.01, 0.05, 3, -1, Number.NaN]) h.observe(s);
    const f = new Family('hashwatch_d_seconds', 'histogram', 'D.');
    addHistogram(f, '', h.snapshot());
    expect(f.lines).toEqual([
      'hashwatch_d_seconds_bucket{le="0.01"} 2',
      'hashwatch_d_seconds_bucket{le="0.1"} 3',
      'hashwatch_d_seconds_bucket{le="+Inf"} 4',
      'hashwatch_d_seconds_sum 3.065',
      'hashwatch_d_seconds_count 4',
    ]);
  });
});
