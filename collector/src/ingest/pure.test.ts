import { describe, expect, it } from 'vitest';
import { LruSet } from './lru.js';
import { isStale } from './presence.js';
import { toRanges } from './ranges.js';

describe('toRanges', () => {
  it('sorts, merges and dedupes seqs into inclusive ranges', () => {
    expect(toRanges([7, 3, 4, 5, 5, 9, 10, 0])).toEqual([
      [0, 0],
      [3, 5],
      [7, 7],
      [9, 10],
    ]);
    expect(toRanges([])).toEqual([]);
  });
});

describe('isStale', () => {
  const current = { bootId: 'boot-aaaaaaaa', conn: 3, ts: 1_000_000, status: 'online' as const, reason: null };
  it('treats a lower conn of the same boot as stale, the same or higher as current', () => {
    expect(isStale(current, { bootId: 'boot-aaaaaaaa', conn: 2, ts: 2_000_000 })).toBe(true);
    expect(isStale(current, { bootId: 'boot-aaaaaaaa', conn: 3, ts: 900_000 })).toBe(false);
    expect(isStale(current, { bootId: 'boot-aaaaaaaa', conn: 4, ts: 900_000 })).toBe(false);
  });
  it('orders different boots by their timestamps', () => {
    expect(isStale(current, { bootId: 'boot-bbbbbbbb', conn: 9, ts: 999_999 })).toBe(true);
    expect(isStale(current, { bootId: 'boot-bbbbbbbb', conn: 0, ts: 1_000_001 })).toBe(false);
    expect(isStale(undefined, { bootId: 'boot-bbbbbbbb', conn: 0, ts: 0 })).toBe(false);
  });
});

describe('LruSet', () => {
  it('forgets the least recently added key past its capacity', () => {
    const lru = new LruSet(2);
    lru.add('a');
    lru.add('b');
    lru.add('a');
    lru.add('c');
    expect([lru.has('a'), lru.has('b'), lru.has('c'), lru.size]).toEqual([true, false, true, 2]);
  });

  it('holds exactly the keys of its last `capacity` adds, on a long random sequence', () => {
    const capacity = 50;
    const lru = new LruSet(capacity);
    const adds: string[] = [];
    let seed = 7;
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return seed / 2_147_483_648;
    };
    for (let i = 0; i < 20_000; i++) {
      // mostly new keys, some added again (a duplicate is re-acked and added again), as ingest does
      const recent = adds.slice(-capacity * 2);
      const key =
        random() < 0.2 && recent.length > 0 ? (recent[Math.floor(random() * recent.length)] as string) : `k${i}`;
      lru.add(key);
      adds.push(key);
      if (i % 997 === 0 || i > 19_900) {
        const window = new Set(adds.slice(-capacity));
        expect(lru.size).toBe(window.size);
        for (const k of window) expect(lru.has(k)).toBe(true);
        for (const k of recent) if (!window.has(k)) expect(lru.has(k)).toBe(false);
      }
    }
  });
});
