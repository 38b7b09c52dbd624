/**
 * `icmp` probe: one `ping` per attempt through the system's ping binary (we do not open raw
 * sockets ourselves). When ping is missing or not permitted (no CAP_NET_RAW, ping_group_range),
 * the result says so with `error_class: 'permission'` and the reachability comes from a TCP probe
 * of the same host on port 80 (a refused connection counts as up), named in `error`.
 */
import { spawn } from 'node:child_process';
import type { Probe } from '../targets.js';
import { type AttemptResult, runAttempts, tcpAttempt } from './attempt.js';

export const ICMP_FALLBACK_PORT = 80;

/** Reads `time=0.045 ms` from ping's output (pure). */
export function parsePingTime(output: string): number | undefined {
  const m = /time[=<]([\d.]+)\s*ms/.exec(output);
  return m ? Number(m[1]) : undefined;
}

type PingOutcome = AttemptResult | { ok: false; errorClass: 'permission'; message: string };

function pingOnce(pingPath: string, host: string, timeoutMs: number, signal: AbortSignal): Promise<PingOutcome> {
  return new Promise((resolve) => {
    const waitS = Math.max(1, Math.ceil(timeoutMs / 1000));
    let output = '';
    let settled = false;
    const started = performance.now();
    const finish = (r: PingOutcome): void => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      resolve(r);
    };
    const child = spawn(pingPath, ['-n', '-c', '1', '-W', String(waitS), host], { stdio: ['ignore', 'pipe', 'pipe'] });
    const onAbort = (): void => {
      child.kill('SIGKILL');
      finish({ ok: false, errorClass: 'timeout', message: `No ICMP echo reply from ${host} in time` });
    };
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    child.stdout.on('data', (d: Buffer) => {
      if (output.length < 8192) output += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      if (output.length < 8192) output += d.toString();
    });
    child.on('error', (err: NodeJS.ErrnoException) => {
      const why =
        err.code === 'ENOENT' ? `${pingPath} is not installed` : `${pingPath} cannot run (${err.code ?? err.message})`;
      finish({ ok: false, errorClass: 'permission', message: why });
    });
    child.on('close', (code) => {
      if (code === 0) {
        finish({ ok: true, latencyMs: parsePingTime(output) ?? performance.now() - started });
      } else if (/not permitted|permission denied|cap_net_raw|socket: /i.test(output)) {
        finish({
          ok: false,
          errorClass: 'permission',
          message: `${pingPath} is not permitted: ${output.trim().slice(0, 160)}`,
        });
      } else if (/unreachable/i.test(output)) {
        finish({
          ok: false,
          errorClass: 'unreachable',
          message: `ICMP to ${host}: ${output.trim().split('\n').pop() ?? ''}`.slice(0, 300),
        });
      } else if (/unknown host|name or service not known|temporary failure in name resolution/i.test(output)) {
        finish({ ok: false, errorClass: 'dns', message: `ICMP to ${host}: cannot resolve the name` });
      } else {
        finish({ ok: false, errorClass: 'timeout', message: `No ICMP echo reply from ${host}` });
      }
    });
  });
}

/** An ICMP probe using the ping binary at `pingPath` (tests point it elsewhere). */
export function createIcmpProbe(pingPath = 'ping'): Probe {
  return {
    kind: 'icmp',
    async probe(target, signal, options) {
      let denied: string | undefined;
      const result = await runAttempts(target, signal, options, async (s) => {
        if (denied === undefined) {
          const r = await pingOnce(pingPath, target.address, options.timeoutMs, s);
          if (r.ok || r.errorClass !== 'permission') return r;
          denied = r.message;
        }
        return tcpAttempt(target.address, ICMP_FALLBACK_PORT, s, true);
      });
      if (denied === undefined) return result;
      // The verdict came from TCP: keep its ok/latency, but say ICMP itself was not possible.
      return {
        ...result,
        error_class: 'permission',
        error:
          `ICMP not possible (${denied}); fell back to TCP connect to ${target.address}:${ICMP_FALLBACK_PORT}${result.error ? `: ${result.error}` : ''}`.slice(
            0,
            512,
          ),
      };
    },
  };
}

export const icmpProbe: Probe = createIcmpProbe();
