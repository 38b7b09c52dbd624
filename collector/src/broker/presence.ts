/**
 * The collector's retained presence message on `hw/v1/_collector/state`, shared by both modes so
 * agents see the same payload whichever broker carries it.
 */
import { hostname } from 'node:os';
import type { CollectorState } from '@hashwatch/protocol';

/** JSON payload of the collector's presence; `ts` is when the status was decided (Unix ms). */
export function collectorStatePayload(collectorId: string, status: 'online' | 'offline', nowMs: number): string {
  const msg: CollectorState = { v: 1, ts: nowMs, collector_id: collectorId.slice(0, 128), status };
  return JSON.stringify(msg);
}

/** Default collector id: the machine's host name. */
export function defaultCollectorId(): string {
  return hostname() || 'collector';
}
