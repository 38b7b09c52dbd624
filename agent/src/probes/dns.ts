/**
 * `dns` probe: resolve `address` (an A record) through the DNS server named in `resolver`
 * (`ip[:port]`), or through the system's configured servers when it is left out. A name that does
 * not exist (NXDOMAIN) or a SERVFAIL is class `dns`; no answer at all is `timeout`.
 */
import { Resolver } from 'node:dns/promises';
import type { Probe } from '../targets.js';
import { classifyProbeError, errorText, runAttempts } from './attempt.js';

export const dnsProbe: Probe = {
  kind: 'dns',
  probe(target, signal, options) {
    return runAttempts(target, signal, options, async (s) => {
      // One try per attempt, with c-ares' own timeout at the attempt deadline: we count the tries.
      const resolver = new Resolver({ timeout: Math.max(1, Math.round(options.timeoutMs)), tries: 1 });
      if (target.resolver) {
        try {
          resolver.setServers([target.resolver]);
        } catch {
          return { ok: false, errorClass: 'other', message: `Resolver "${target.resolver}" is not ip[:port]` };
        }
      }
      const onAbort = (): void => resolver.cancel();
      s.addEventListener('abort', onAbort, { once: true });
      const started = performance.now();
      try {
        const addresses = await resolver.resolve4(target.address);
        if (addresses.length === 0) {
          return { ok: false, errorClass: 'dns', message: `DNS: no A record for ${target.address}` };
        }
        return { ok: true, latencyMs: performance.now() - started };
      } catch (err) {
        const cls = s.aborted ? 'timeout' : classifyProbeError(err);
        const via = target.resolver ? ` via ${target.resolver}` : '';
        return { ok: false, errorClass: cls, message: `DNS lookup of ${target.address}${via}: ${errorText(err)}` };
      } finally {
        s.removeEventListener('abort', onAbort);
      }
    });
  },
};
