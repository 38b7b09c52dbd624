/**
 * The report transaction on a worker thread (`store.writer_thread`). With synchronous=FULL a batch
 * commit waits for the disk, and the inserts are a third of the collector's busy time at full
 * ingest; on the main thread both stalled the broker, decoding and the diagnosis. The thread gets
 * batches as plain data (`WriterItem`) and answers each with its `WriteResult`, in order.
 *
 * A thread that dies fails its pending batches (not acked: the agents resend) and is started again
 * on the next batch.
 */
import { type TransferListItem, Worker } from 'node:worker_threads';
import { StoreError, type StoreErrorCode } from './errors.js';
import type { WriteResult, WriterItem } from './report-writer.js';
import type { CheckpointResult } from './wal.js';

/** What the thread needs to open its own connection. */
export interface WriterData {
  path: string;
  busyTimeoutMs: number;
  cacheSizeMiB: number;
}

export type WriterRequest =
  | { id: number; type: 'write'; items: WriterItem[] }
  | { id: number; type: 'checkpoint'; truncatePages: number; latest: Float64Array }
  | { id: number; type: 'close' };

export type WriterReply =
  | { id: number; ok: true; result?: WriteResult | CheckpointResult }
  | { id: number; ok: false; code: StoreErrorCode; detail: string; sqliteCode: string | undefined };

interface Pending {
  resolve: (result: WriteResult | CheckpointResult | undefined) => void;
  reject: (err: StoreError) => void;
}

/** Under the test runner this module is TypeScript source: its thread then loads it through tsx. */
function startWorker(data: WriterData): Worker {
  if (!import.meta.url.endsWith('.ts'))
    return new Worker(new URL('./writer-worker.js', import.meta.url), { workerData: data });
  const source = new URL('./writer-worker.ts', import.meta.url).href;
  const boot = `import('tsx/esm/api').then((t) => { t.register(); return import(${JSON.stringify(source)}); });`;
  return new Worker(boot, { eval: true, workerData: data });
}

export class WriterThread {
  private readonly data: WriterData;
  private readonly onFailure: (err: StoreError) => void;
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  /** `onFailure` hears of a thread that failed or exited unasked (its batches are failed as well). */
  constructor(data: WriterData, onFailure: (err: StoreError) => void) {
    this.data = data;
    this.onFailure = onFailure;
  }

  /** Commits one batch on the thread (see ReportWriter.write). Rejects with a StoreError. */
  write(items: WriterItem[]): Promise<WriteResult> {
    return this.request({ id: this.nextId++, type: 'write', items }) as Promise<WriteResult>;
  }

  /**
   * Writes the latest-sample pointers `latest` (see `writeLatest`), then checkpoints the WAL (see
   * `checkpointWal`), on the thread between two batches. Rejects with a StoreError.
   */
  checkpoint(truncatePages: number, latest: Float64Array): Promise<CheckpointResult> {
    // moved, not copied (3 ms for 50,000 rigs): `latest` is empty here afterwards
    return this.request({ id: this.nextId++, type: 'checkpoint', truncatePages, latest }, [
      latest.buffer as ArrayBuffer,
    ]) as Promise<CheckpointResult>;
  }

  /** Closes the thread's connection and ends the thread, after the batches already sent. */
  async close(): Promise<void> {
    const worker = this.worker;
    if (!worker) return;
    try {
      await this.request({ id: this.nextId++, type: 'close' });
    } catch {
      // a thread that cannot close its connection is ended all the same
    }
    this.worker = undefined;
    await worker.terminate();
  }

  private request(
    msg: WriterRequest,
    transfer: TransferListItem[] = [],
  ): Promise<WriteResult | CheckpointResult | undefined> {
    const worker = this.worker ?? this.spawn();
    return new Promise((resolve, reject) => {
      this.pending.set(msg.id, { resolve, reject });
      worker.ref();
      worker.postMessage(msg, transfer);
    });
  }

  private spawn(): Worker {
    const worker = startWorker(this.data);
    worker.on('message', (reply: WriterReply) => {
      const p = this.pending.get(reply.id);
      if (!p) return;
      this.pending.delete(reply.id);
      // an idle thread must not keep the process alive
      if (this.pending.size === 0) worker.unref();
      if (reply.ok) p.resolve(reply.result);
      else p.reject(new StoreError(reply.code, reply.detail, { sqliteCode: reply.sqliteCode }));
    });
    const fail = (err: StoreError) => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      const pending = [...this.pending.values()];
      this.pending.clear();
      for (const p of pending) p.reject(err);
      this.onFailure(err);
    };
    worker.on('error', (err) => fail(new StoreError('HW_ERR_STORE', `the writer thread failed: ${err.message}`)));
    worker.on('exit', (code) => fail(new StoreError('HW_ERR_STORE', `the writer thread exited with code ${code}`)));
    this.worker = worker;
    return worker;
  }
}
