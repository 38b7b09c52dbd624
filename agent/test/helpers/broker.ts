/**
 * A real MQTT broker (aedes, in-process) on a loopback port that can be stopped and started again
 * on the same port, to play "the broker went away". Stopping destroys every client socket.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { Aedes } from 'aedes';

export class TestBroker {
  port = 0;
  private aedes: Aedes | null = null;
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.server !== null;
  }

  /** Listens on a free port the first time, then on the same port again. */
  async start(): Promise<void> {
    if (this.server) return;
    const aedes = await Aedes.createBroker();
    const server = createServer((socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      aedes.handle(socket);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('broker has no TCP address');
    this.port = address.port;
    this.aedes = aedes;
    this.server = server;
  }

  /** Drops every connection at once (no clean disconnect), as a crashed broker would. */
  async stop(): Promise<void> {
    const server = this.server;
    const aedes = this.aedes;
    this.server = null;
    this.aedes = null;
    if (!server || !aedes) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    await new Promise<void>((resolve) => aedes.close(() => resolve()));
    await closed;
  }

  async restart(downMs = 0): Promise<void> {
    await this.stop();
    if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
    await this.start();
  }

  /** Client sockets connected right now. */
  connections(): number {
    return this.sockets.size;
  }
}
