/**
 * The hashrate chart: inline SVG, no library. Actual hashrate at the bottom, the deficit stacked on
 * top of it by cause (so the stack's top is the expected hashrate), over the last hour.
 */
import { clock, hashrate } from './format.js';
import { CAUSES } from './states.js';

const SVG = 'http://www.w3.org/2000/svg';
const W = 800;
const H = 220;
const PAD = { left: 64, right: 8, top: 8, bottom: 22 };

function el(name, attrs, text) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Sums the points' sites (or picks one site) into series: actual and deficit per cause. */
function series(history, site) {
  return history.map((p) => {
    const out = { ts: p.ts, actual: 0, deficits: {} };
    for (const s of p.sites) {
      if (site && s.site !== site) continue;
      out.actual += s.hashrateHs;
      for (const [cause, hs] of Object.entries(s.deficitHsByCause))
        out.deficits[cause] = (out.deficits[cause] ?? 0) + hs;
    }
    return out;
  });
}

/**
 * Redraws the chart into `container`: at most `windowMs` of history, ending at `nowMs`.
 * Returns the causes present, for the legend.
 */
export function drawChart(container, history, { site, nowMs, windowMs }) {
  const rows = series(history, site).filter((r) => r.ts >= nowMs - windowMs);
  // A young collector has less than the window: stretch what there is (at least 10 s) over the width.
  const spanMs = Math.min(windowMs, Math.max(10_000, nowMs - (rows[0]?.ts ?? nowMs)));
  const startMs = nowMs - spanMs;
  const svg = el('svg', {
    viewBox: `0 0 ${W} ${H}`,
    class: 'chart-svg',
    role: 'img',
    'aria-label': 'Hashrate over the last hour, with the missing hashrate stacked by cause',
  });
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const x = (ts) => PAD.left + ((ts - startMs) / spanMs) * plotW;
  let max = 0;
  for (const r of rows) max = Math.max(max, r.actual + Object.values(r.deficits).reduce((a, b) => a + b, 0));
  max = max > 0 ? max * 1.05 : 1;
  const y = (v) => PAD.top + plotH - (v / max) * plotH;

  for (const frac of [0, 0.5, 1]) {
    const v = max * frac;
    svg.append(el('line', { x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v), class: 'grid' }));
    svg.append(el('text', { x: PAD.left - 6, y: y(v) + 4, class: 'axis', 'text-anchor': 'end' }, hashrate(v)));
  }
  for (const frac of [0, 0.5, 1]) {
    const ts = startMs + spanMs * frac;
    const anchor = frac === 0 ? 'start' : frac === 1 ? 'end' : 'middle';
    svg.append(el('text', { x: x(ts), y: H - 6, class: 'axis', 'text-anchor': anchor }, clock(ts)));
  }

  const present = CAUSES.filter((c) => rows.some((r) => (r.deficits[c] ?? 0) > 0));
  if (rows.length >= 2) {
    // Each band spans [lower, upper] per point; bands are drawn bottom-up.
    const bands = [
      { id: 'ok', value: (r) => r.actual },
      ...present.map((c) => ({ id: c, value: (r) => r.deficits[c] ?? 0 })),
    ];
    const base = rows.map(() => 0);
    for (const band of bands) {
      const upper = rows.map((r, i) => base[i] + band.value(r));
      const top = rows.map((r, i) => `${x(r.ts).toFixed(1)},${y(upper[i]).toFixed(1)}`);
      const bottom = rows.map((r, i) => `${x(r.ts).toFixed(1)},${y(base[i]).toFixed(1)}`).reverse();
      svg.append(el('polygon', { points: [...top, ...bottom].join(' '), class: `band fill-${band.id}` }));
      for (let i = 0; i < rows.length; i++) base[i] = upper[i];
    }
  } else {
    svg.append(el('text', { x: W / 2, y: H / 2, class: 'axis', 'text-anchor': 'middle' }, 'Collecting data…'));
  }
  container.replaceChildren(svg);
  return present;
}
