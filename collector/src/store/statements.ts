/**
 * Prepared statements kept per connection: the main thread's and the writer thread's connections
 * each need their own, and preparing on every call costs more than the queries that use them.
 */
import type BetterSqlite3 from 'better-sqlite3';

/** Returns a getter that prepares with `prepare` once per connection and reuses the result. */
export function perConnection<T>(prepare: (db: BetterSqlite3.Database) => T): (db: BetterSqlite3.Database) => T {
  const cache = new WeakMap<BetterSqlite3.Database, T>();
  return (db) => {
    let s = cache.get(db);
    if (s === undefined) {
      s = prepare(db);
      cache.set(db, s);
    }
    return s;
  };
}
