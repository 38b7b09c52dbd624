/** Display formatting: SI prefixes for hashrate and power, short durations. Pure functions. */

const PREFIXES = ['', 'k', 'M', 'G', 'T', 'P', 'E', 'Z'];

/** `si(1.234e14, 'H/s')` → `123 TH/s`; null/undefined → `–`. */
export function si(value, unit) {
  if (value === null || value === undefined || !Number.isFinite(value)) return '–';
  if (value === 0) return `0 ${unit}`;
  let v = Math.abs(value);
  let i = 0;
  while (v >= 1000 && i < PREFIXES.length - 1) {
    v /= 1000;
    i++;
  }
  const digits = v >= 100 ? 0 : v >= 10 ? 1 : 2;
  return `${value < 0 ? '-' : ''}${v.toFixed(digits)} ${PREFIXES[i]}${unit}`;
}

export const hashrate = (hs) => si(hs, 'H/s');
export const power = (w) => si(w, 'W');

export function percent(part, whole) {
  if (!whole || !Number.isFinite(part)) return '–';
  return `${Math.round((part / whole) * 100)}%`;
}

/** `95_000` → `1m 35s`; `7_200_000` → `2h 0m`. */
export function duration(ms) {
  if (!Number.isFinite(ms) || ms < 0) return '–';
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ${m % 60}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

export function clock(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}
