/**
 * `http` probe: GET a URL (agent/src/http-get.ts: a fresh connection per attempt, so each attempt
 * tests the whole path). Any HTTP status counts as reachable (a 404 or 503 still proves the path
 * across the internet works); only a failure to get a status line is a failure.
 */
import { httpGet } from '../http-get.js';
import type { Probe } from '../targets.js';
import { classifyProbeError, errorText, runAttempts } from './attempt.js';

export const httpProbe: Probe = {
  kind: 'http',
  probe(target, signal, options) {
    return runAttempts(target, signal, options, async (s) => {
      const started = performance.now();
      try {
        // The status line is the answer; the body is not read. Redirects are not followed.
        await httpGet(target.address, { signal: s, headers: { 'user-agent': 'hashwatch/0.1' }, maxBodyBytes: 0 });
        return { ok: true, latencyMs: performance.now() - started };
      } catch (err) {
        if (err instanceof TypeError && /Invalid URL|Failed to parse URL/i.test(errorText(err))) {
          return { ok: false, errorClass: 'other', message: `Address "${target.address}" is not a URL` };
        }
        return { ok: false, errorClass: classifyProbeError(err), message: `GET ${target.address}: ${errorText(err)}` };
      }
    });
  },
};
