/**
 * Every uplink probe, in one visible list. Adding a kind: write `<kind>.ts` implementing Probe,
 * add it to the `kind` union in targets.ts and the protocol, list it here, document it in README.md.
 */
import type { Probe, ProbeTarget } from '../targets.js';
import { dnsProbe } from './dns.js';
import { gatewayProbe } from './gateway.js';
import { httpProbe } from './http.js';
import { icmpProbe } from './icmp.js';
import { stratumProbe } from './stratum.js';
import { tcpProbe } from './tcp.js';

export const PROBES: Record<ProbeTarget['kind'], Probe> = {
  gateway: gatewayProbe,
  dns: dnsProbe,
  tcp: tcpProbe,
  stratum: stratumProbe,
  http: httpProbe,
  icmp: icmpProbe,
};

/** The probe for a kind. */
export function probeFor(kind: ProbeTarget['kind']): Probe {
  return PROBES[kind];
}

export { runProbes } from './run.js';
