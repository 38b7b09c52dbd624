/**
 * A tiny Transport over a real embedded aedes broker listening on 127.0.0.1:0, so ingest tests run
 * against a real broker with real mqtt.js clients, independent of the broker module's own code.
 */

import type { AddressInfo } from 'node:net';
import net from 'node:net';
import { Aedes } from 'aedes';
import mqtt, { type MqttClient } from 'mqtt';
import type { MessageHandler, PublishOptions, Transport, TransportHealth } from '../../src/broker/transport.js';

/** Message bodies in tests are asserted field by field; a precise type would only restate them. */
// biome-ignore lint/suspicious/noExplicitAny: see above
export type Loose = any;

export interface AgentMessage {
  topic: string;
  body: Loose;
  atMs: number;
}

export class AedesTestTransport implements Transport {
  private handler: MessageHandler | undefined;
  private broker: Aedes | undefined;
  private server: net.Server | undefined;
  port = 0;

  onMessage(handler: MessageHandler): void {
    this.handler = handler;
  }

  async start(): Promise<void> {
    const broker = await Aedes.createBroker();
    this.broker = broker;
    for (const kind of ['birth', 'state', 'report']) {
      await new Promise<void>((resolve) => {
        broker.subscribe(
          `hw/v1/+/+/${kind}`,
          (packet, cb) => {
            const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
            void Promise.resolve(this.handler?.({ topic: packet.topic, payload })).finally(() => cb());
          },
          () => resolve(),
        );
      });
    }
    this.server = net.createServer(broker.handle);
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    const server = this.server;
    const broker = this.broker;
    this.server = undefined;
    this.broker = undefined;
    if (broker) await new Promise<void>((resolve) => broker.close(() => resolve()));
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  publish(topic: string, payload: string | Buffer, options: PublishOptions): Promise<void> {
    const broker = this.broker;
    if (!broker) return Promise.reject(new Error('broker stopped'));
    return new Promise((resolve, reject) =>
      broker.publish(
        { cmd: 'publish', topic, payload: Buffer.from(payload), qos: options.qos, retain: options.retain, dup: false },
        (err) => (err ? reject(err) : resolve()),
      ),
    );
  }

  health(): TransportHealth {
    return { up: this.broker !== undefined, mode: 'embedded' };
  }

  /** No credentials to re-read: this test broker lets anyone in. */
  async reload(): Promise<void> {}

  /** An agent-shaped client: QoS 1, subscribed to its ack and cmd topics. */
  async agent(site: string, host: string): Promise<{ client: MqttClient; messages: AgentMessage[] }> {
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${this.port}`, {
      reconnectPeriod: 0,
      connectTimeout: 5000,
    });
    const messages: AgentMessage[] = [];
    client.on('message', (topic, payload) =>
      messages.push({ topic, body: JSON.parse(payload.toString()), atMs: Date.now() }),
    );
    await client.subscribeAsync([`hw/v1/${site}/${host}/ack`, `hw/v1/${site}/${host}/cmd`], { qos: 1 });
    return { client, messages };
  }
}

/** Polls `predicate` until true or `timeoutMs` passes (then throws with `what`). */
export async function waitFor(predicate: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
