/**
 * The writer thread's program: its own connection to the collector's database, running the report
 * transaction (`ReportWriter`) for the main thread. The main thread opened and migrated the file
 * first; this connection only writes reports, samples, probes and new rigs, the rigs' latest-sample
 * pointers, and checkpoints the WAL.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { toStoreError } from './errors.js';
import { writeLatest } from './latest.js';
import { ReportWriter } from './report-writer.js';
import { checkpointWal } from './wal.js';
import type { WriterData, WriterReply, WriterRequest } from './writer-thread.js';

const port = parentPort;
if (!port) throw new Error('writer-worker.js runs as a worker thread only');
const data = workerData as WriterData;

let db: Database.Database | undefined;
let writer: ReportWriter | undefined;

function open(): ReportWriter {
  if (writer) return writer;
  const conn = new Database(data.path, { timeout: data.busyTimeoutMs });
  try {
    conn.pragma('synchronous = FULL');
    conn.pragma('wal_autocheckpoint = 0');
    conn.pragma(`cache_size = ${-Math.round(data.cacheSizeMiB * 1024)}`);
    conn.pragma('temp_store = MEMORY');
    const rigIds = new Map<string, number>();
    for (const r of conn
      .prepare<[], { id: number; host_id: number; name: string }>('SELECT id, host_id, name FROM rigs')
      .iterate()) {
      rigIds.set(`${r.host_id}/${r.name}`, r.id);
    }
    writer = new ReportWriter(conn, rigIds);
    db = conn;
    return writer;
  } catch (err) {
    conn.close();
    throw err;
  }
}

port.on('message', (msg: WriterRequest) => {
  let reply: WriterReply;
  try {
    if (msg.type === 'close') {
      db?.close();
      db = undefined;
      writer = undefined;
      reply = { id: msg.id, ok: true };
    } else if (msg.type === 'checkpoint') {
      open();
      writeLatest(db as Database.Database, msg.latest);
      reply = { id: msg.id, ok: true, result: checkpointWal(db as Database.Database, msg.truncatePages) };
    } else {
      reply = { id: msg.id, ok: true, result: open().write(msg.items) };
    }
  } catch (err) {
    const e = toStoreError(err, `the writer thread on ${data.path}`);
    reply = { id: msg.id, ok: false, code: e.code, detail: e.detail, sqliteCode: e.sqliteCode };
  }
  port.postMessage(reply);
});
