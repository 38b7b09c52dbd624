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
  /** Aborting it (deadline or shutdown) ends the request with a `timeout` error. */
  signal: AbortSignal;
}

/** Sends one command and collects the reply. Never throws. */
export function cgminerRequest(req: CgminerRequest): Promise<WireResult> {
  return new Promise<WireResult>((resolve) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    let connected = false;
    let settled = false;
    const where = `${req.host}:${req.port}`;

    const finish = (result: WireResult): void => {
      if (settled) return;
      settled = true;
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
    const replyText = (): string => Buffer.concat(chunks).toString('utf8');

    const socket = net.connect({ host: req.host, port: req.port });
    if (req.signal.aborted) {
      onAbort();
      return;
    }
    req.signal.addEventListener('abort', onAbort, { once: true });
    socket.setNoDelay(true);
    socket.on('connect', () => {
      connected = true;
      const body: Record<string, string> = { command: req.command };
      if (req.parameter !== undefined) body.parameter = req.parameter;
      socket.write(JSON.stringify(body));
    });
    socket.on('data', (chunk: Buffer) => {
      const nul = chunk.indexOf(0);
      const part = nul >= 0 ? chunk.subarray(0, nul) : chunk;
      chunks.push(part);
      bytes += part.length;
      if (bytes > MAX_REPLY_BYTES) {
        fail('invalid_reply', `Rig API ${where} sent more than ${MAX_REPLY_BYTES} bytes; not a cgminer reply`);
      } else if (nul >= 0) {
        finish({ ok: true, text: replyText() });
      }
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
