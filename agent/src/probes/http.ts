/**
 * `http` probe: GET a URL with fetch. Any HTTP status counts as reachable (a 404 or 503 still
 * proves the path across the internet works); only a failure to get a status line is a failure.
 */
import type { Probe } from '../targets.js';
import { classifyProbeError, errorText, runAttempts } from './attempt.js';

export const httpProbe: Probe = {
  kind: 'http',
  probe(target, signal, options) {
    return runAttempts(target, signal, options, async (s) => {
      const started = performance.now();
      try {
        const res = await fetch(target.address, {
          signal: s,
          redirect: 'manual',
          headers: { 'user-agent': 'hashwatch/0.1' },
        });
        const latencyMs = performance.now() - started;
        // The body is not needed; cancel it so the connection is released.
        await res.body?.cancel().catch(() => {});
        return { ok: true, latencyMs };
      } catch (err) {
        if (err instanceof TypeError && /Invalid URL|Failed to parse URL/i.test(errorText(err))) {
          return { ok: false, errorClass: 'other', message: `Address "${target.address}" is not a URL` };
        }
        return { ok: false, errorClass: classifyProbeError(err), message: `GET ${target.address}: ${errorText(err)}` };
      }
    });
  },
};
