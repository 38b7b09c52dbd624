/**
 * Process helpers for the benchmarks: CPU and RSS of another process from /proc, percentiles, a
 * free loopback port, and bounded waits.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

const CLK_TCK = 100;

export interface ProcSample {
  atMs: number;
  /** user + system CPU time since the process started, in seconds. */
  cpuS: number;
  rssBytes: number;
}

/** CPU time and RSS of `pid` now (Linux /proc). */
export function procSample(pid: number): ProcSample {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may contain spaces) start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return { atMs: performance.now(), cpuS: (utime + stime) / CLK_TCK, rssBytes: rssKb * 1024 };
}

/** Samples a process every `everyMs`; `stop()` returns CPU % of one core over the window and RSS. */
export function watchProcess(pid: number, everyMs = 1000) {
  const first = procSample(pid);
  const samples: ProcSample[] = [first];
  const timer = setInterval(() => {
    try {
      samples.push(procSample(pid));
    } catch {
      // the process exited; stop() reports what was seen
    }
  }, everyMs);
  return {
    stop(): { cpuPercent: number; cpuS: number; rssMaxBytes: number; rssLastBytes: number; windowS: number } {
      clearInterval(timer);
      try {
        samples.push(procSample(pid));
      } catch {
        // exited
      }
      const last = samples[samples.length - 1] as ProcSample;
      const windowS = (last.atMs - first.atMs) / 1000;
      const cpuS = last.cpuS - first.cpuS;
      return {
        cpuPercent: windowS > 0 ? (cpuS / windowS) * 100 : 0,
        cpuS,
        rssMaxBytes: Math.max(...samples.map((s) => s.rssBytes)),
        rssLastBytes: last.rssBytes,
        windowS,
      };
    },
  };
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] as number;
}

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const addr = server.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `check` every `everyMs` until it returns true; throws `what` after `timeoutMs`. */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string, everyMs = 100) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(everyMs);
  }
  throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
}
