/**
 * The WAL checkpoint, shared by the main connection (inline writes) and the writer thread. SQLite's
 * autocheckpoint is off (at 1000 pages it fired on nearly every large commit); the collector calls
 * this on a timer instead.
 */
import type Database from 'better-sqlite3';

export interface CheckpointResult {
  /** Pages in the WAL when the checkpoint started. */
  walPages: number;
  /** The WAL was past the threshold and was truncated as well (not when a reader held it). */
  truncated: boolean;
}

type CheckpointRow = { busy: number; log: number; checkpointed: number };

/**
 * Copies what it can of the WAL into the database file (PASSIVE: never waits for readers or the
 * writer), then truncates the WAL file when it holds more than `truncatePages` pages, so a burst
 * does not leave a large file behind.
 */
export function checkpointWal(db: Database.Database, truncatePages: number): CheckpointResult {
  const walPages = (db.pragma('wal_checkpoint(PASSIVE)') as CheckpointRow[])[0]?.log ?? 0;
  if (walPages <= truncatePages) return { walPages, truncated: false };
  const truncate = (db.pragma('wal_checkpoint(TRUNCATE)') as CheckpointRow[])[0];
  return { walPages, truncated: truncate?.busy === 0 };
}
