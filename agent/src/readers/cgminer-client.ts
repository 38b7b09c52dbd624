/**
 * The cgminer API wire (TCP, port 4028 by default): one JSON command per connection; the rig
 * answers with JSON terminated by a NUL byte and/or closes the connection. This module only moves
 * bytes and classifies failures; parsing lives in cgminer-json.ts and cgminer.ts.
 */
import net from 'node:net';
import type { PollError } from '@hashwatch/protocol';
import { classifyNetError, describeError } from './sample.js';

/** A reply larger than this is not a cgminer reply (a full S19 multi-command is ~20 KiB). */
export const MAX_REPLY_BYTES = 4 * 1024 * 1024;

export type WireResult = { ok: true; text: string } | { ok: false; error: PollError };

export interface CgminerRequest {
  host: string;
  port: number;
  /** `summary`, or several joined with `+` for firmware that supports multi-commands. */
  command: string;
  parameter?: string;
  /** Aborting it (the poller's cutoff, shutdown) ends the request with a `timeout` error. */
  signal: AbortSignal;
  /**
   * `performance.now()` by which the reply must be complete, else a `timeout` error. A plain
   * timer rather than a deadline signal: an AbortController per rig and round is a tenth of the
   * poll round's allocations.
   */
  deadline?: number;
}

/**
 * One read buffer shared by every request: libuv reads into it and `onData` consumes each read
 * before the next one can happen (one thread), copying only what has to outlive the callback.
 * Saves a Buffer and a trip through the stream machinery per read, on 200 rigs every round.
 */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

/** Sends one command and collects the reply. Never throws. */
export function cgminerRequest(req: CgminerRequest): Promise<WireResult> {
  return new Promise<WireResult>((resolve) => {
    // Reads that did not end the reply, copied out of READ_BUFFER.
    const chunks: Buffer[] = [];
    let bytes = 0;
    let connected = false;
    let settled = false;
    const where = `${req.host}:${req.port}`;

    let timer: NodeJS.Timeout | undefined;
    const finish = (result: WireResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.signal.removeEventListener('abort', onAbort);
      socket.destroy();
      resolve(result);
    };
    const fail = (kind: PollError['kind'], message: string): void => finish({ ok: false, error: { kind, message } });
    const onAbort = (): void => {
      if (!connected) fail('timeout', `Rig API ${where} did not accept a connection before the poll deadline`);
      else if (bytes === 0) fail('timeout', `Rig API ${where} accepted the connection but did not answer in time`);
      else fail('timeout', `Rig API ${where} started a reply (${bytes} bytes) but did not finish it in time`);
    };
    const replyText = (): string => Buffer.concat(chunks, bytes).toString('utf8');
    const onData = (nread: number, buf: Buffer): boolean => {
      if (settled) return false;
      const nul = buf.subarray(0, nread).indexOf(0);
      const end = nul >= 0 ? nul : nread;
      bytes += end;
      if (bytes > MAX_REPLY_BYTES) {
        fail('invalid_reply', `Rig API ${where} sent more than ${MAX_REPLY_BYTES} bytes; not a cgminer reply`);
      } else if (nul >= 0 && chunks.length === 0) {
        // The whole reply in one read (the usual case): decode it straight from the read buffer.
        finish({ ok: true, text: buf.toString('utf8', 0, end) });
      } else {
        chunks.push(Buffer.from(buf.subarray(0, end)));
        if (nul >= 0) finish({ ok: true, text: replyText() });
      }
      return true;
    };

    const socket = net.connect({ host: req.host, port: req.port, onread: { buffer: READ_BUFFER, callback: onData } });
    const leftMs = req.deadline === undefined ? Number.POSITIVE_INFINITY : req.deadline - performance.now();
    if (req.signal.aborted || leftMs <= 0) {
      onAbort();
      return;
    }
    req.signal.addEventListener('abort', onAbort, { once: true });
    if (leftMs !== Number.POSITIVE_INFINITY) timer = setTimeout(onAbort, leftMs);
    socket.on('connect', () => {
      connected = true;
      const body: Record<string, string> = { command: req.command };
      if (req.parameter !== undefined) body.parameter = req.parameter;
      socket.write(JSON.stringify(body));
    });
    socket.on('end', () => {
      if (bytes === 0) fail('protocol', `Rig API ${where} closed the connection without answering`);
      else finish({ ok: true, text: replyText() });
    });
    socket.on('close', () => {
      if (bytes === 0) fail('protocol', `Rig API ${where} closed the connection without answering`);
      else finish({ ok: true, text: replyText() });
    });
    socket.on('error', (err) => {
      const kind = classifyNetError(err);
      // A reset after part of a reply: hand over what arrived, the parser will call it cut off.
      if (bytes > 0 && kind === 'protocol') finish({ ok: true, text: replyText() });
      else fail(kind, `Rig API ${where}: ${describeError(err)}`);
    });
  });
}
