/**
 * `tcp` probe: can a TCP connection to `host:port` be opened? A refused connection is a failure
 * here (the service is down), unlike the gateway probe.
 */
import type { Probe } from '../targets.js';
import { parseHostPort, runAttempts, tcpAttempt } from './attempt.js';

export const tcpProbe: Probe = {
  kind: 'tcp',
  probe(target, signal, options) {
    const hp = parseHostPort(target.address);
    return runAttempts(target, signal, options, async (s) => {
      if (!hp) return { ok: false, errorClass: 'other', message: `Address "${target.address}" is not host:port` };
      return tcpAttempt(hp.host, hp.port, s, false);
    });
  },
};
