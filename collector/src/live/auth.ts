/**
 * Who may open the live view: an optional bearer token and an Origin allow-list, checked on the
 * HTTP upgrade so a refused client never becomes a WebSocket. Pure: takes the request's headers
 * and URL, returns a verdict with the HTTP status to answer.
 */
import { timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

export interface UpgradePolicy {
  /** Shared secret; empty or absent = no token needed (keep the collector on a trusted network). */
  token?: string | undefined;
  /**
   * Origins (`https://ops.example.com`) whose pages may connect. Absent or empty = same host only
   * (the Origin's host equals the Host header); `*` = any. Clients that send no Origin (scripts,
   * curl) are not browsers and are let through: the token is what guards them.
   */
  allowedOrigins?: string[] | undefined;
}

export type UpgradeVerdict = { ok: true } | { ok: false; status: 401 | 403; reason: string };

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The token a client presented: `Authorization: Bearer …`, else `?token=` (browsers cannot set headers on WebSocket). */
export function presentedToken(headers: IncomingHttpHeaders, url: URL): string | undefined {
  const auth = headers.authorization;
  if (auth) {
    const m = /^Bearer\s+(.+)$/i.exec(auth.trim());
    if (m) return m[1];
  }
  return url.searchParams.get('token') ?? undefined;
}

export function checkUpgrade(headers: IncomingHttpHeaders, url: URL, policy: UpgradePolicy): UpgradeVerdict {
  const origin = headers.origin;
  if (origin !== undefined && !originAllowed(origin, headers.host, policy.allowedOrigins)) {
    return { ok: false, status: 403, reason: `Origin ${JSON.stringify(origin.slice(0, 200))} is not allowed` };
  }
  if (policy.token) {
    const given = presentedToken(headers, url);
    if (given === undefined) return { ok: false, status: 401, reason: 'A bearer token is required' };
    if (!sameSecret(given, policy.token)) return { ok: false, status: 401, reason: 'The bearer token is wrong' };
  }
  return { ok: true };
}

export function originAllowed(origin: string, host: string | undefined, allowed: string[] | undefined): boolean {
  if (allowed && allowed.length > 0) {
    if (allowed.includes('*')) return true;
    return allowed.some((a) => a.replace(/\/+$/, '').toLowerCase() === origin.toLowerCase());
  }
  if (!host) return false;
  try {
    return new URL(origin).host.toLowerCase() === host.toLowerCase();
  } catch {
    return false;
  }
}
