/**
 * A stand-in for the collector's ingest: a real mqtt.js client that records every report it
 * receives and answers each with a protocol-valid `ack` (exact seq range), unless told not to.
 */
import { type Ack, decode, encode, type Report } from '@hashwatch/protocol';
import { connect, type MqttClient } from 'mqtt';
import { TestBroker } from './broker.js';

export interface Received {
  site: string;
  host: string;
  report: Report;
  receivedMs: number;
}

export class Acker {
  /** Answer reports with acks; set false to play a collector that stores nothing. */
  acking = true;
  readonly received: Received[] = [];
  readonly rejected: string[] = [];
  private client: MqttClient | null = null;
  private readonly url: string;

  constructor(url: string) {
    this.url = url;
  }

  async start(): Promise<void> {
    const client = connect(this.url, {
      clientId: `test-acker-${process.pid}-${Math.random().toString(16).slice(2)}`,
      clean: true,
      reconnectPeriod: 100,
      connectTimeout: 2000,
      protocolVersion: 4,
    });
    this.client = client;
    client.on('error', () => {});
    client.on('connect', () => {
      client.subscribe('hw/v1/+/+/report', { qos: 1 });
    });
    client.on('message', (topic, payload) => this.onReport(topic, payload));
    await new Promise<void>((resolve) => client.once('connect', () => resolve()));
    // The subscription must be in place before the test starts producing.
    await client.subscribeAsync('hw/v1/+/+/report', { qos: 1 });
  }

  private onReport(topic: string, payload: Buffer): void {
    const [, , site = '', host = ''] = topic.split('/');
    const res = decode('report', payload, Date.now());
    if (!res.ok) {
      this.rejected.push(res.error.message);
      return;
    }
    this.received.push({ site, host, report: res.value, receivedMs: Date.now() });
    if (!this.acking || !this.client) return;
    const ack: Ack = {
      v: 1,
      ts: Date.now(),
      acks: [{ boot_id: res.value.boot_id, ranges: [[res.value.seq, res.value.seq]] }],
    };
    const out = encode('ack', ack, Date.now());
    if (!out.ok) throw new Error(out.error.message);
    this.client.publish(`hw/v1/${site}/${host}/ack`, out.value, { qos: 1 });
  }

  /** Publishes any payload on an agent's topic (commands, garbage). */
  async publish(topic: string, payload: string): Promise<void> {
    await this.client?.publishAsync(topic, payload, { qos: 1 });
  }

  /** Distinct `boot_id:seq` keys received. */
  keys(bootId?: string): Set<string> {
    const out = new Set<string>();
    for (const r of this.received) {
      if (bootId === undefined || r.report.boot_id === bootId) out.add(`${r.report.boot_id}:${r.report.seq}`);
    }
    return out;
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = null;
    if (client) await client.endAsync(true);
  }
}

/** Polls `predicate` every 20 ms until it holds or `timeoutMs` passes; throws with `what` on timeout. */
export async function waitFor(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * A loopback broker with an acker on it, their stops pushed onto `cleanups` (which the caller runs
 * last-in first-out after each test).
 */
export async function brokerWithAcker(cleanups: Array<() => unknown>): Promise<{ broker: TestBroker; acker: Acker }> {
  const broker = new TestBroker();
  await broker.start();
  cleanups.push(() => broker.stop());
  const acker = new Acker(broker.url);
  await acker.start();
  cleanups.push(() => acker.stop());
  return { broker, acker };
}
