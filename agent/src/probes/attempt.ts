/**
 * What every probe shares: running `attempts` tries one after another, each with its own deadline,
 * and folding them into one ProbeResult (ok if any try succeeded, loss ratio, median latency of the
 * successes, the class of the last failure); classifying socket errors; a TCP connect.
 */
import net from 'node:net';
import type { ProbeErrorClass, ProbeResult } from '@hashwatch/protocol';
import type { PollOptions, ProbeTarget } from '../targets.js';

export type AttemptResult =
  | { ok: true; latencyMs: number; note?: string }
  | { ok: false; errorClass: ProbeErrorClass; message: string };

export type ProbeOptions = PollOptions & { attempts: number };

/** Runs one try; `signal` carries the per-try deadline (and the caller's shutdown). */
export type Attempt = (signal: AbortSignal) => Promise<AttemptResult>;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

const MAX_ERROR_TEXT = 512;

/** Runs the attempts in sequence and builds the result. Never throws. */
export async function runAttempts(
  target: ProbeTarget,
  signal: AbortSignal,
  options: ProbeOptions,
  attempt: Attempt,
): Promise<ProbeResult> {
  const attempts = Math.min(100, Math.max(1, Math.floor(options.attempts)));
  const latencies: number[] = [];
  let lastFailure: { errorClass: ProbeErrorClass; message: string } | undefined;
  let note: string | undefined;
  for (let i = 0; i < attempts; i++) {
    if (signal.aborted) {
      lastFailure = { errorClass: 'timeout', message: 'Probe window ended before all attempts ran' };
      break;
    }
    let r: AttemptResult;
    try {
      r = await attempt(AbortSignal.any([signal, AbortSignal.timeout(Math.max(1, options.timeoutMs))]));
    } catch (err) {
      r = { ok: false, errorClass: 'other', message: `Probe failed: ${(err as Error).message}` };
    }
    if (r.ok) {
      latencies.push(Math.max(0, r.latencyMs));
      note = r.note ?? note;
    } else lastFailure = { errorClass: r.errorClass, message: r.message };
  }
  const result: ProbeResult = {
    target: target.target,
    kind: target.kind,
    role: target.role,
    ok: latencies.length > 0,
    attempts,
    loss_ratio: Math.min(1, (attempts - latencies.length) / attempts),
    ts: options.now(),
  };
  if (latencies.length) result.latency_ms = Math.min(600_000, Math.round(median(latencies) * 1000) / 1000);
  if (lastFailure) {
    result.error_class = lastFailure.errorClass;
    result.error = lastFailure.message.slice(0, MAX_ERROR_TEXT);
  } else if (note) result.error = note.slice(0, MAX_ERROR_TEXT);
  return result;
}

/** Maps a Node socket, DNS or fetch error to a probe error class. */
export function classifyProbeError(err: unknown): ProbeErrorClass {
  const code = codeOf(err);
  switch (code) {
    case 'ECONNREFUSED':
      return 'refused';
    case 'ETIMEDOUT':
    case 'ETIMEOUT':
    case 'ABORT_ERR':
    case 'UND_ERR_CONNECT_TIMEOUT':
      return 'timeout';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EADDRNOTAVAIL':
    case 'ENETDOWN':
      return 'unreachable';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'ENODATA':
    case 'ESERVFAIL':
    case 'EREFUSED':
    case 'ENOTIMP':
    case 'EFORMERR':
    case 'EBADRESP':
    case 'ECONNREFUSED_DNS':
      return 'dns';
    case 'EACCES':
    case 'EPERM':
      return 'permission';
    case 'ECONNRESET':
    case 'EPIPE':
      return 'protocol';
    default:
      if (err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError')) return 'timeout';
      return 'other';
  }
}

function codeOf(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { code?: unknown; cause?: unknown };
  if (typeof e.code === 'string') return e.code;
  return e.cause !== undefined ? codeOf(e.cause) : undefined;
}

/** A one-line message from an error, with its code. */
export function errorText(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = codeOf(err);
  const cause = (err as { cause?: unknown }).cause;
  const detail = cause instanceof Error && cause.message !== err.message ? `: ${cause.message}` : '';
  return `${err.message}${detail}${code && !err.message.includes(code) ? ` (${code})` : ''}`;
}

/** Parses `host:port`, `[v6]:port`; `defaultPort` when the port is left out. */
export function parseHostPort(address: string, defaultPort?: number): { host: string; port: number } | undefined {
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(address);
  let host: string;
  let portText: string | undefined;
  if (v6) {
    host = v6[1] as string;
    portText = v6[2];
  } else {
    const idx = address.lastIndexOf(':');
    if (idx > 0 && address.indexOf(':') === idx) {
      host = address.slice(0, idx);
      portText = address.slice(idx + 1);
    } else {
      host = address;
    }
  }
  const port = portText !== undefined ? Number(portText) : defaultPort;
  if (!host || port === undefined || !Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  return { host, port };
}

/** Opens a TCP connection and hands the socket over on success. */
export function tcpConnect(
  host: string,
  port: number,
  signal: AbortSignal,
): Promise<{ ok: true; socket: net.Socket; latencyMs: number } | { ok: false; err: unknown }> {
  return new Promise((resolve) => {
    const started = performance.now();
    const socket = net.connect({ host, port });
    const onAbort = (): void => {
      socket.destroy();
      resolve({
        ok: false,
        err: Object.assign(new Error(`No TCP answer from ${host}:${port} in time`), { code: 'ETIMEDOUT' }),
      });
    };
    if (signal.aborted) {
      onAbort();
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => {
      signal.removeEventListener('abort', onAbort);
      resolve({ ok: true, socket, latencyMs: performance.now() - started });
    });
    socket.once('error', (err) => {
      signal.removeEventListener('abort', onAbort);
      socket.destroy();
      resolve({ ok: false, err });
    });
  });
}

/**
 * One TCP reachability try. With `refusedIsUp`, a refused connection counts as success: the host
 * answered with a RST, so it is alive even if nothing listens on that port (gateway, ICMP fallback).
 */
export async function tcpAttempt(
  host: string,
  port: number,
  signal: AbortSignal,
  refusedIsUp: boolean,
): Promise<AttemptResult> {
  const started = performance.now();
  const r = await tcpConnect(host, port, signal);
  if (r.ok) {
    r.socket.destroy();
    return { ok: true, latencyMs: r.latencyMs };
  }
  const errorClass = classifyProbeError(r.err);
  if (refusedIsUp && errorClass === 'refused') return { ok: true, latencyMs: performance.now() - started };
  return { ok: false, errorClass, message: `TCP ${host}:${port}: ${errorText(r.err)}` };
}
