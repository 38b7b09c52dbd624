/**
 * Runs every probe target concurrently. Each probe gets a hard cap of `attempts × timeoutMs` plus
 * slack: a probe that ignores its signal still yields a timeout result, so one stuck target never
 * holds up the report.
 */
import type { ProbeResult } from '@hashwatch/protocol';
import type { ProbeTarget } from '../targets.js';
import type { ProbeOptions } from './attempt.js';
import { probeFor } from './index.js';

/** Extra time past the attempts' own deadlines before a probe is cut off. */
const CAP_SLACK_MS = 250;

export async function runProbes(
  targets: ProbeTarget[],
  signal: AbortSignal,
  options: ProbeOptions,
): Promise<ProbeResult[]> {
  return Promise.all(targets.map((t) => runOne(t, signal, options)));
}

async function runOne(target: ProbeTarget, signal: AbortSignal, options: ProbeOptions): Promise<ProbeResult> {
  const attempts = Math.min(100, Math.max(1, Math.floor(options.attempts)));
  const capMs = attempts * options.timeoutMs + CAP_SLACK_MS;
  const controller = new AbortController();
  const onAbort = (): void => controller.abort();
  signal.addEventListener('abort', onAbort, { once: true });
  let timer: NodeJS.Timeout | undefined;
  const capped = new Promise<ProbeResult>((resolve) => {
    timer = setTimeout(() => {
      controller.abort();
      resolve({
        target: target.target,
        kind: target.kind,
        role: target.role,
        ok: false,
        attempts,
        loss_ratio: 1,
        error_class: 'timeout',
        error: `Probe did not finish within ${capMs} ms`,
        ts: options.now(),
      });
    }, capMs);
  });
  try {
    const run = probeFor(target.kind)
      .probe(target, controller.signal, { ...options, attempts })
      .catch(
        (err: unknown): ProbeResult => ({
          target: target.target,
          kind: target.kind,
          role: target.role,
          ok: false,
          attempts,
          loss_ratio: 1,
          error_class: 'other',
          error: `Probe failed: ${(err as Error).message}`.slice(0, 512),
          ts: options.now(),
        }),
      );
    return await Promise.race([run, capped]);
  } finally {
    clearTimeout(timer);
    signal.removeEventListener('abort', onAbort);
  }
}
