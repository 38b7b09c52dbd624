/**
 * Where a resumable retention pass stands (`retention_marks`): written in the same transaction as
 * the chunk it describes, so a crash neither repeats nor skips a chunk.
 */
import type BetterSqlite3 from 'better-sqlite3';
import { perConnection } from './statements.js';

const stmts = perConnection((db) => {
  return {
    read: db.prepare<[string], { value: number }>('SELECT value FROM retention_marks WHERE name = ?'),
    write: db.prepare<[string, number]>(
      'INSERT INTO retention_marks (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value',
    ),
  };
});

/** The mark's value, `undefined` before it was first set. */
export function readMark(db: BetterSqlite3.Database, name: string): number | undefined {
  return stmts(db).read.get(name)?.value;
}

export function writeMark(db: BetterSqlite3.Database, name: string, value: number): void {
  stmts(db).write.run(name, value);
}
