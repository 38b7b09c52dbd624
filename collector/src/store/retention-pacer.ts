/**
 * Sizes retention's sample folds by time: each chunk is one transaction that holds SQLite's write
 * lock (the writer thread's commits wait) and, on the main thread, the event loop (acks, the
 * diagnosis, the views wait). 1,000 rigs per chunk took up to 0.44 s on a 2-core machine at
 * 20,000 rigs and would take longer on a slower disk; the pacer instead grows or shrinks the
 * slice so that a chunk takes about `targetMs`, whatever the machine.
 *
 * Accounting compaction is not paced: each of its commits rewrites the pages of the hour in the
 * table's two time-ordered indexes whatever the number of rigs, so 5 rigs per chunk instead of 50
 * made the whole hour 2.6 times as long (BENCHMARKS.md, finding 18).
 */
import type { RetentionPhase, RetentionSlices } from './retention.js';

type Paced = 'rawRigs' | 'minuteRigs';

/** The slice to start from: small, so the first chunk of a phase never stalls for long. */
const START_RIGS = 100;
/** Upper bound: past it a chunk is already long enough to amortise its transaction. */
const MAX_RIGS = 20_000;
/** At most this factor up or down per chunk, so one outlier (a checkpoint, a busy disk) cannot swing it. */
const STEP = 2;

const SLICE_OF: Record<RetentionPhase, Paced | undefined> = {
  raw: 'rawRigs',
  minute: 'minuteRigs',
  accounting: undefined,
  probes: undefined,
  drop: undefined,
};

export class RetentionPacer {
  private readonly targetMs: number;
  private readonly current: Record<Paced, number> = { rawRigs: START_RIGS, minuteRigs: START_RIGS };

  /** `targetMs`: how long one chunk should hold the write lock and the event loop. */
  constructor(targetMs: number) {
    this.targetMs = targetMs;
  }

  /** The slices to use for the next chunk (the phases it does not pace keep their defaults). */
  get slices(): Partial<RetentionSlices> {
    return { ...this.current };
  }

  /** Feeds back how long a chunk of `phase` took; phases it does not pace are left alone. */
  observe(phase: RetentionPhase | undefined, ms: number): void {
    const key = phase === undefined ? undefined : SLICE_OF[phase];
    if (key === undefined) return;
    const factor = Math.min(STEP, Math.max(1 / STEP, this.targetMs / Math.max(ms, 0.1)));
    this.current[key] = Math.min(MAX_RIGS, Math.max(1, Math.round(this.current[key] * factor)));
  }
}
