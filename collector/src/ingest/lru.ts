/**
 * A bounded set of the keys of its last `capacity` adds: a key is forgotten once `capacity` adds
 * have followed its latest one (so it holds fewer than `capacity` keys when some were added twice).
 *
 * Eviction must not look for the oldest key in the Map: V8 leaves a deleted Map entry as a hole
 * until the table is rebuilt, so `keys().next()` after many evictions walks every hole first. The
 * ingest dedupe cache (200,000 keys) then cost up to ~0.15 ms per add once full, and a collector
 * fed 1-rig reports fell from 17.9k to 5.2k samples/s within a minute of load (BENCHMARKS.md,
 * finding 19). A ring of the last `capacity` adds says which key to forget instead.
 */
export class LruSet {
  /** Each key, with the number of its latest add. */
  private readonly latest = new Map<string, number>();
  /** The key of add number n, at n % capacity, for the last `capacity` adds. */
  private readonly ring: Array<string | undefined>;
  private readonly capacity: number;
  private adds = 0;

  constructor(capacity: number) {
    this.capacity = capacity;
    this.ring = new Array<string | undefined>(capacity);
  }

  has(key: string): boolean {
    return this.latest.has(key);
  }

  add(key: string): void {
    const n = this.adds++;
    const slot = n % this.capacity;
    const leaving = this.ring[slot];
    // The add `capacity` adds ago leaves the window: forget its key unless it was added again since.
    if (leaving !== undefined && this.latest.get(leaving) === n - this.capacity) this.latest.delete(leaving);
    this.ring[slot] = key;
    this.latest.set(key, n);
  }

  get size(): number {
    return this.latest.size;
  }
}
