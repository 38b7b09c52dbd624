/**
 * A fixed-bucket latency histogram that ingest (or anything else) can own without prom-client:
 * `observe()` is a few additions, `snapshot()` hands the renderer what it prints.
 */
import type { HistogramSnapshot } from './exposition.js';

/** Commit latencies of a batched SQLite `synchronous=FULL` commit: sub-millisecond to seconds. */
export const COMMIT_LATENCY_BUCKETS_SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export class LatencyHistogram {
  private readonly counts: number[];
  private sumSeconds = 0;
  private count = 0;

  /** `upperBoundsSeconds` must be ascending; `+Inf` is implicit. */
  constructor(private readonly upperBoundsSeconds: readonly number[] = COMMIT_LATENCY_BUCKETS_SECONDS) {
    this.counts = upperBoundsSeconds.map(() => 0);
  }

  observe(seconds: number): void {
    if (!Number.isFinite(seconds) || seconds < 0) return;
    this.sumSeconds += seconds;
    this.count++;
    for (let i = 0; i < this.upperBoundsSeconds.length; i++) {
      if (seconds <= (this.upperBoundsSeconds[i] ?? 0)) {
        this.counts[i] = (this.counts[i] ?? 0) + 1;
        return;
      }
    }
  }

  snapshot(): HistogramSnapshot {
    let running = 0;
    const cumulativeCounts = this.counts.map((c) => {
      running += c;
      return running;
    });
    return {
      upperBoundsSeconds: this.upperBoundsSeconds,
      cumulativeCounts,
      sumSeconds: this.sumSeconds,
      count: this.count,
    };
  }
}
