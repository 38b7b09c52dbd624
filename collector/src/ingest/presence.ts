/**
 * Agent presence from `birth` and `state`. MQTT orders messages per topic only, so a Last Will of
 * an old connection can arrive after the agent reconnected: each message carries (boot_id, conn)
 * and anything older than the current session is stale and ignored. Pure.
 */

export interface Session {
  bootId: string;
  conn: number;
  /** Agent-clock ts of the message that set this session. */
  ts: number;
  status: 'online' | 'offline';
  reason: 'lost' | 'shutdown' | null;
}

/**
 * Whether `incoming` is older than `current`: same boot with a lower conn, or another boot whose
 * message was stamped earlier (a previous boot's late Will).
 */
export function isStale(current: Session | undefined, incoming: Pick<Session, 'bootId' | 'conn' | 'ts'>): boolean {
  if (!current) return false;
  if (incoming.bootId === current.bootId) return incoming.conn < current.conn;
  return incoming.ts < current.ts;
}
