/**
 * `gateway` probe: is the LAN's router up? Address `auto` reads the default route's gateway from
 * /proc/net/route (Linux); otherwise `ip` or `ip:port`. Reachability is a TCP connect to port 80
 * (or the given port) where a refused connection also proves the gateway is up: it answered.
 */
import { readFile } from 'node:fs/promises';
import type { Probe } from '../targets.js';
import { parseHostPort, runAttempts, tcpAttempt } from './attempt.js';

export const GATEWAY_DEFAULT_PORT = 80;

/**
 * The default gateway from the text of /proc/net/route: the first line with destination 0 and
 * the RTF_GATEWAY flag; the address is a little-endian hex IPv4. Pure.
 */
export function parseDefaultGateway(routeTable: string): string | undefined {
  for (const line of routeTable.split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols.length < 4) continue;
    const [, dest, gw, flagsHex] = cols as [string, string, string, string];
    const flags = Number.parseInt(flagsHex, 16);
    if (dest !== '00000000' || !(flags & 0x2) || !/^[0-9A-Fa-f]{8}$/.test(gw)) continue;
    const n = Number.parseInt(gw, 16);
    return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff].join('.');
  }
  return undefined;
}

/** Reads the default gateway of this host, or undefined when there is no default route. */
export async function defaultGateway(routeFile = '/proc/net/route'): Promise<string | undefined> {
  try {
    return parseDefaultGateway(await readFile(routeFile, 'utf8'));
  } catch {
    return undefined;
  }
}

export function createGatewayProbe(routeFile = '/proc/net/route'): Probe {
  return {
    kind: 'gateway',
    async probe(target, signal, options) {
      let address = target.address;
      if (address === 'auto') {
        const gw = await defaultGateway(routeFile);
        if (!gw) {
          return runAttempts(target, signal, options, async () => ({
            ok: false,
            errorClass: 'unreachable',
            message: `No default route in ${routeFile}: this host has no gateway configured`,
          }));
        }
        address = gw;
      }
      const hp = parseHostPort(address, GATEWAY_DEFAULT_PORT);
      return runAttempts(target, signal, options, async (s) => {
        if (!hp) return { ok: false, errorClass: 'other', message: `Address "${address}" is not ip[:port]` };
        return tcpAttempt(hp.host, hp.port, s, true);
      });
    },
  };
}

export const gatewayProbe: Probe = createGatewayProbe();
