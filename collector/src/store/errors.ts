/**
 * Store failures as values with a stable code. SQLite's own codes (SQLITE_BUSY, SQLITE_FULL, …)
 * mean little to a farm operator; these say what happened and what to do about it.
 */

export const STORE_ERRORS = {
  HW_ERR_STORE_BUSY: 'The database is locked by another process',
  HW_ERR_STORE_CORRUPT: 'The database file is corrupt or not a SQLite database',
  HW_ERR_STORE_FULL: 'The disk holding the database is full',
  HW_ERR_STORE_READONLY: 'The database cannot be written',
  HW_ERR_STORE_IO: 'The database file could not be read or written',
  HW_ERR_STORE_SCHEMA: 'The database was written by a newer collector',
  HW_ERR_STORE_CLOSED: 'The database is not open',
  HW_ERR_STORE: 'The database failed',
} as const;

export type StoreErrorCode = keyof typeof STORE_ERRORS;

const HINTS: Partial<Record<StoreErrorCode, string>> = {
  HW_ERR_STORE_BUSY: 'stop the other process using it, or raise store.busy_timeout_ms',
  HW_ERR_STORE_CORRUPT: 'move the file aside and restart (agents resend what their spools hold)',
  HW_ERR_STORE_FULL: 'free disk space or shorten retention; unacknowledged reports stay in the agent spools',
  HW_ERR_STORE_READONLY: 'check the file and directory permissions',
  HW_ERR_STORE_IO: 'check the disk and the file system',
  HW_ERR_STORE_SCHEMA: 'upgrade the collector or point store.path at another file',
};

export class StoreError extends Error {
  readonly code: StoreErrorCode;
  /** The SQLite error code behind it (`SQLITE_FULL`), when there is one. */
  readonly sqliteCode: string | undefined;
  /** What failed, without the code's summary and hint (rebuilds the error across a thread boundary). */
  readonly detail: string;
  constructor(code: StoreErrorCode, detail: string, options: { cause?: unknown; sqliteCode?: string } = {}) {
    const hint = HINTS[code];
    super(`${STORE_ERRORS[code]}: ${detail}${hint ? ` (${hint})` : ''}`, { cause: options.cause });
    this.name = 'StoreError';
    this.code = code;
    this.detail = detail;
    this.sqliteCode = options.sqliteCode;
  }
}

/** Maps a better-sqlite3 SqliteError (or anything thrown) to a StoreError; `what` says what was being done. */
export function toStoreError(err: unknown, what: string): StoreError {
  if (err instanceof StoreError) return err;
  const sqliteCode = typeof (err as { code?: unknown })?.code === 'string' ? (err as { code: string }).code : '';
  const message = err instanceof Error ? err.message : String(err);
  const detail = `${what}: ${message}`;
  const base = sqliteCode.split('_').slice(0, 2).join('_');
  const code: StoreErrorCode =
    base === 'SQLITE_BUSY' || base === 'SQLITE_LOCKED'
      ? 'HW_ERR_STORE_BUSY'
      : base === 'SQLITE_CORRUPT' || base === 'SQLITE_NOTADB'
        ? 'HW_ERR_STORE_CORRUPT'
        : base === 'SQLITE_FULL'
          ? 'HW_ERR_STORE_FULL'
          : base === 'SQLITE_READONLY' || base === 'SQLITE_PERM' || base === 'SQLITE_CANTOPEN'
            ? 'HW_ERR_STORE_READONLY'
            : base === 'SQLITE_IOERR'
              ? sqliteCode === 'SQLITE_IOERR_NOMEM'
                ? 'HW_ERR_STORE'
                : 'HW_ERR_STORE_IO'
              : 'HW_ERR_STORE';
  return new StoreError(code, detail, { cause: err, sqliteCode: sqliteCode || undefined });
}
