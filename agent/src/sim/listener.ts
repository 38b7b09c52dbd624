/**
 * A loopback TCP (or HTTP) server that can be switched off and on again on the same port, the
 * way a device loses power and comes back, and that destroys every connection it accepted when it
 * stops. Used by every simulated part.
 */
import type { Server, Socket } from 'node:net';

export class SwitchableListener {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  /** The bound port; 0 until the first `open`, then kept across `close`/`open`. */
  port = 0;

  constructor(private readonly create: () => Server) {}

  get listening(): boolean {
    return this.server !== undefined;
  }

  /** Starts listening on 127.0.0.1 (port 0 the first time, the same port afterwards). */
  async open(): Promise<void> {
    if (this.server) return;
    const server = this.create();
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      // A peer that resets must not crash the simulator.
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address();
    if (address && typeof address === 'object') this.port = address.port;
    this.server = server;
  }

  /** Stops listening and drops every open connection: new connections are refused. */
  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Drops open connections but keeps listening (e.g. a restart of the service behind the port). */
  dropConnections(): void {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }
}
