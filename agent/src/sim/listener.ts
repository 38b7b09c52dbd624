/**
 * A loopback TCP (or HTTP) server that can be switched off and on again on the same port, the
 * way a device loses power and comes back, and that destroys every connection it accepted when it
 * stops. Used by every simulated part.
 */
import { readFileSync } from 'node:fs';
import type { Server, Socket } from 'node:net';

/**
 * Ports below the kernel's ephemeral range. A simulated device that loses power closes its port
 * and binds it again later; a port from the ephemeral range (what `listen(0)` hands out) can be
 * taken meanwhile as the local port of any outgoing connection on the machine (EADDRINUSE seen in
 * a loaded CI run during a 2-min cut). Below the range only another listener can take it.
 */
function stablePortRange(): [number, number] {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    if (Number.isInteger(low) && low > 11_024) return [low - 10_000, low];
  } catch {
    // not Linux: fall through
  }
  return [20_000, 30_000];
}

const PORT_RANGE = stablePortRange();

export class SwitchableListener {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  /** The bound port; 0 until the first `open`, then kept across `close`/`open`. */
  port = 0;

  constructor(private readonly create: () => Server) {}

  get listening(): boolean {
    return this.server !== undefined;
  }

  /**
   * Starts listening on 127.0.0.1: the first time on a free port below the ephemeral range (see
   * `stablePortRange`), the same port afterwards.
   */
  async open(): Promise<void> {
    if (this.server) return;
    if (this.port !== 0) return this.bind(this.port);
    const [low, high] = PORT_RANGE;
    for (let attempt = 0; attempt < 50; attempt++) {
      const port = low + Math.floor(Math.random() * (high - low));
      try {
        return await this.bind(port);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
      }
    }
    return this.bind(0);
  }

  private async bind(port: number): Promise<void> {
    const server = this.create();
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      // A peer that resets must not crash the simulator.
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
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
