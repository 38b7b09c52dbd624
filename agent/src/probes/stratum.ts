/**
 * `stratum` probe: connect to a pool's `host:port`, send `mining.subscribe` and expect a JSON-RPC
 * reply line with a `result`. A pool that accepts the connection but answers anything else (an
 * error, HTML, garbage, nothing before the deadline after connecting) is class `protocol` or
 * `timeout`: it proves the network path but not the pool.
 */
import type { Probe } from '../targets.js';
import {
  type AttemptResult,
  classifyProbeError,
  errorText,
  parseHostPort,
  runAttempts,
  tcpConnect,
} from './attempt.js';

export const STRATUM_SUBSCRIBE = '{"id":1,"method":"mining.subscribe","params":["hashwatch/0.1"]}\n';
/** A subscribe reply is a few hundred bytes; anything longer without a newline is not stratum. */
const MAX_LINE_BYTES = 16 * 1024;
/** Notifications a pool may send before its reply (e.g. `mining.set_difficulty`). */
const MAX_LINES = 8;

/** Judges one line of a pool's answer (pure): a verdict, or `undefined` to read the next line. */
export function judgeStratumLine(line: string): { ok: true } | { ok: false; message: string } | undefined {
  let msg: unknown;
  try {
    msg = JSON.parse(line);
  } catch {
    return { ok: false, message: `Pool answered something that is not JSON-RPC: ${JSON.stringify(line.slice(0, 60))}` };
  }
  if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) {
    return { ok: false, message: 'Pool answered JSON that is not a JSON-RPC message' };
  }
  const m = msg as { id?: unknown; result?: unknown; error?: unknown; method?: unknown };
  if (typeof m.method === 'string' && (m.id === null || m.id === undefined)) return undefined;
  if (m.error !== undefined && m.error !== null) {
    return { ok: false, message: `Pool refused mining.subscribe: ${JSON.stringify(m.error).slice(0, 200)}` };
  }
  if (m.result === undefined || m.result === null) return { ok: false, message: 'Pool reply has no result' };
  return { ok: true };
}

export const stratumProbe: Probe = {
  kind: 'stratum',
  probe(target, signal, options) {
    const hp = parseHostPort(target.address);
    return runAttempts(target, signal, options, async (s): Promise<AttemptResult> => {
      if (!hp) return { ok: false, errorClass: 'other', message: `Address "${target.address}" is not host:port` };
      const started = performance.now();
      const conn = await tcpConnect(hp.host, hp.port, s);
      if (!conn.ok) {
        return {
          ok: false,
          errorClass: classifyProbeError(conn.err),
          message: `Pool ${target.address}: ${errorText(conn.err)}`,
        };
      }
      const socket = conn.socket;
      return new Promise<AttemptResult>((resolve) => {
        let buffered = '';
        let lines = 0;
        const done = (r: AttemptResult): void => {
          s.removeEventListener('abort', onAbort);
          socket.destroy();
          resolve(r);
        };
        const onAbort = (): void =>
          done({
            ok: false,
            errorClass: 'timeout',
            message: `Pool ${target.address} accepted the connection but did not answer mining.subscribe in time`,
          });
        if (s.aborted) return onAbort();
        s.addEventListener('abort', onAbort, { once: true });
        socket.setEncoding('utf8');
        socket.on('data', (chunk: string) => {
          buffered += chunk;
          let nl = buffered.indexOf('\n');
          while (nl >= 0) {
            const line = buffered.slice(0, nl).trim();
            buffered = buffered.slice(nl + 1);
            if (line) {
              const verdict = judgeStratumLine(line);
              lines++;
              if (verdict?.ok) return done({ ok: true, latencyMs: performance.now() - started });
              if (verdict)
                return done({
                  ok: false,
                  errorClass: 'protocol',
                  message: `Pool ${target.address}: ${verdict.message}`,
                });
              if (lines >= MAX_LINES)
                return done({
                  ok: false,
                  errorClass: 'protocol',
                  message: `Pool ${target.address} sent ${lines} lines without a reply to mining.subscribe`,
                });
            }
            nl = buffered.indexOf('\n');
          }
          if (buffered.length > MAX_LINE_BYTES) {
            done({
              ok: false,
              errorClass: 'protocol',
              message: `Pool ${target.address} sent a line longer than ${MAX_LINE_BYTES} bytes`,
            });
          }
        });
        socket.on('end', () =>
          done({
            ok: false,
            errorClass: 'protocol',
            message: `Pool ${target.address} closed the connection without a reply`,
          }),
        );
        socket.on('error', (err) =>
          done({
            ok: false,
            errorClass: classifyProbeError(err),
            message: `Pool ${target.address}: ${errorText(err)}`,
          }),
        );
        socket.write(STRATUM_SUBSCRIBE);
      });
    });
  },
};
