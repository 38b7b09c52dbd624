/** Shared bits of the broker tests: a log capture, real mqtt.js clients, bounded waits. */
import { Writable } from 'node:stream';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { type Logger, pino } from 'pino';

export interface LogCapture {
  log: Logger;
  lines: Record<string, unknown>[];
}

/** A pino logger whose JSON lines are kept in memory, so tests can assert what was logged. */
export function captureLog(level: 'debug' | 'info' | 'warn' = 'info'): LogCapture {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line.trim() !== '') lines.push(JSON.parse(line));
      cb();
    },
  });
  return { log: pino({ level }, sink), lines };
}

/** Connects a real mqtt.js client without retries; rejects with the broker's refusal. */
export function connectClient(url: string, options: IClientOptions = {}): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5_000, protocolVersion: 4, ...options });
    const timer = setTimeout(() => {
      client.end(true);
      reject(new Error(`connect to ${url} timed out`));
    }, 8_000);
    client.once('connect', () => {
      clearTimeout(timer);
      resolve(client);
    });
    client.once('error', (err) => {
      clearTimeout(timer);
      client.end(true);
      reject(err);
    });
    client.once('close', () => {
      clearTimeout(timer);
      reject(new Error('connection closed before CONNACK'));
    });
  });
}

/** Polls `check` every 20 ms until it is true; throws `what` after `timeoutMs`. */
export async function waitFor(check: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Resolves when the client's connection closes (or at once if it already has). */
export function closed(client: MqttClient, timeoutMs = 5_000): Promise<void> {
  if (!client.connected && client.disconnected) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('client was not disconnected in time')), timeoutMs);
    client.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Subscribes and returns the broker's granted code per filter (128 = refused), without throwing on refusals. */
export function subscribeGranted(client: MqttClient, filters: string[]): Promise<[string, number][]> {
  return new Promise((resolve, reject) => {
    client.subscribe(filters, { qos: 1 }, (err, _subs, packet) => {
      const granted = (packet as { granted?: number[] } | undefined)?.granted;
      if (!granted) {
        reject(err ?? new Error('no SUBACK'));
        return;
      }
      resolve(filters.map((f, i) => [f, granted[i] ?? -1]));
    });
  });
}
