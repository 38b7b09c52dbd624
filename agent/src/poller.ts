/**
 * One poll round: every rig read (at most `concurrency` at a time, each cut off after
 * `rigTimeoutMs` whatever its reader does) while every probe target runs concurrently. The agent
 * program calls this once per interval and wraps the result into a report.
 *
 * Bound: a round of N rigs costs at most about ceil(N / concurrency) × rigTimeoutMs, because each
 * worker slot is held for at most rigTimeoutMs per rig (a hung rig cannot hold it longer), and the
 * probes (≤ probeAttempts × probeTimeoutMs) run beside the rigs.
 */
import { setMaxListeners } from 'node:events';
import type { ProbeResult, RigSample } from '@hashwatch/protocol';
import { runProbes } from './probes/run.js';
import { readerFor } from './readers/index.js';
import { errorSample } from './readers/sample.js';
import type { ProbeTarget, RigTarget } from './targets.js';

export interface PollRoundOptions {
  /** Rigs polled at the same time. */
  concurrency: number;
  /** Hard deadline per rig: a hung rig costs at most this. */
  rigTimeoutMs: number;
  /** Deadline per probe attempt. */
  probeTimeoutMs: number;
  /** Attempts per probe target in the round's window. */
  probeAttempts: number;
  /** The agent's clock (Unix ms). */
  now: () => number;
  /** Aborts the whole round (agent shutdown): pending rigs come back as timeouts. */
  signal?: AbortSignal;
}

export interface PollRoundResult {
  /** One sample per rig target, in the order of the targets. */
  rigs: RigSample[];
  /** One result per probe target, in the order of the targets. */
  probes: ProbeResult[];
  durationMs: number;
  /**
   * Failures by kind: `poll_<PollErrorKind>` per rig, `probe_<ProbeErrorClass>` per failed probe,
   * `meter_failed`. A closed set of at most 14 keys, so it fits the report's `agent.errors`.
   */
  errors: Record<string, number>;
}

/** Extra time the hard per-rig cutoff allows past the reader's own deadline. */
const RIG_CUTOFF_SLACK_MS = 50;

/**
 * The abort controller a worker hands to its readers, following the round's signal. One per
 * worker rather than per rig (an AbortController is one of the larger allocations of a rig poll);
 * a cutoff aborts it, and the worker then takes a fresh one for its next rig.
 */
function followRound(roundSignal: AbortSignal): { controller: AbortController; release: () => void } {
  const controller = new AbortController();
  if (roundSignal.aborted) {
    controller.abort();
    return { controller, release: () => {} };
  }
  const onAbort = (): void => controller.abort();
  roundSignal.addEventListener('abort', onAbort, { once: true });
  return { controller, release: () => roundSignal.removeEventListener('abort', onAbort) };
}

async function pollOne(target: RigTarget, options: PollRoundOptions, controller: AbortController): Promise<RigSample> {
  let timer: NodeJS.Timeout | undefined;
  // The reader has its own deadline; this cutoff is the guarantee in case a reader ignores it.
  const cutoff = new Promise<RigSample>((resolve) => {
    timer = setTimeout(() => {
      controller.abort();
      resolve(errorSample(target.id, options.now(), 'timeout', `Rig did not answer within ${options.rigTimeoutMs} ms`));
    }, options.rigTimeoutMs + RIG_CUTOFF_SLACK_MS);
  });
  try {
    const read = readerFor(target.api)
      .poll(target, controller.signal, { timeoutMs: options.rigTimeoutMs, now: options.now })
      .catch((err: unknown) => errorSample(target.id, options.now(), 'other', `Reader failed: ${String(err)}`));
    return await Promise.race([read, cutoff]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls every rig and probes every target once. Never throws. */
export async function pollRound(
  rigs: RigTarget[],
  probes: ProbeTarget[],
  options: PollRoundOptions,
): Promise<PollRoundResult> {
  const started = performance.now();
  const roundSignal = options.signal ?? new AbortController().signal;
  // Every worker and probe listens on the round's signal (and removes itself after):
  // many listeners at once is the design, not a leak.
  setMaxListeners(0, roundSignal);
  const samples: RigSample[] = new Array(rigs.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    let follower = followRound(roundSignal);
    try {
      while (next < rigs.length) {
        const i = next++;
        if (follower.controller.signal.aborted && !roundSignal.aborted) {
          follower.release();
          follower = followRound(roundSignal);
        }
        samples[i] = await pollOne(rigs[i] as RigTarget, options, follower.controller);
      }
    } finally {
      follower.release();
    }
  };
  const workers = Math.max(1, Math.min(Math.floor(options.concurrency), rigs.length));
  const [, probeResults] = await Promise.all([
    Promise.all(Array.from({ length: rigs.length ? workers : 0 }, worker)),
    runProbes(probes, roundSignal, {
      timeoutMs: options.probeTimeoutMs,
      attempts: options.probeAttempts,
      now: options.now,
    }),
  ]);

  const errors: Record<string, number> = {};
  const count = (key: string): void => {
    errors[key] = (errors[key] ?? 0) + 1;
  };
  for (const s of samples) {
    if (s.error) count(`poll_${s.error.kind}`);
    if (s.flags?.includes('meter_failed')) count('meter_failed');
  }
  for (const p of probeResults) if (!p.ok) count(`probe_${p.error_class ?? 'other'}`);
  return { rigs: samples, probes: probeResults, durationMs: performance.now() - started, errors };
}
