/**
 * Long main-thread work done in slices. The collector has one event loop for the broker, the acks,
 * the live view and `/metrics`; a job that walks every rig at farm scale (a scrape's page, a save of
 * the diagnosis memory) takes 100–300 ms at 50,000 rigs, and in one piece every ack waited that long
 * (BENCHMARKS.md, findings 25 and 26).
 */
import { performance } from 'node:perf_hooks';

/**
 * Main-thread time after which sliced work gives the event loop a turn: short enough that an ack
 * waits about this long at worst, long enough that the pauses cost little (one `setImmediate` each).
 */
export const SLICE_MS = 10;

/**
 * Items (rigs, mostly) a walk handles between two points where it may pause: at 50,000 rigs one
 * such step is 0.5-4 ms of work, and the pause is only taken once `SLICE_MS` have passed.
 */
export const ITEMS_PER_STEP = 1024;

/** Runs stepped work in one piece (no pause) and returns its result. */
export function runToEnd<T>(steps: Generator<void, T, void>): T {
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
  }
}

/**
 * Runs `steps` to the end, giving the event loop a turn (`setImmediate`) whenever `sliceMs` have
 * passed since the last one. A step is one `next()`: the iterator decides where a pause may fall,
 * and should keep each step well under `sliceMs`. An exception from a step rejects the Promise.
 */
export async function runInSlices(steps: Iterable<unknown>, sliceMs = SLICE_MS): Promise<void> {
  let sliceStart = performance.now();
  for (const _ of steps) {
    if (performance.now() - sliceStart < sliceMs) continue;
    await new Promise<void>((resolve) => setImmediate(resolve));
    sliceStart = performance.now();
  }
}
