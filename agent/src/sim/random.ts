/** A small seeded PRNG (mulberry32), so a simulated farm replays the same figures for a seed. */
export type Random = () => number;

export function seededRandom(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `value` with a relative noise of ±`ratio`. */
export function noisy(rand: Random, value: number, ratio: number): number {
  return value * (1 + (rand() * 2 - 1) * ratio);
}
