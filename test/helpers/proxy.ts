/**
 * A fault-injecting TCP proxy on 127.0.0.1 between agents and a broker. Modes:
 * - `pass`: bytes flow both ways untouched;
 * - `cut`: every connection is destroyed and the listener closed (new connects are refused), like
 *   an uplink that went away; `pass` again re-listens on the same port;
 * - `hang`: connections stay open but no byte moves either way (a black-holed route); new
 *   connections are accepted and never reach the broker;
 * - `delay`: every chunk is held `delayMs` (order kept) in both directions;
 * - `drop`: each chunk closes its connection with probability `dropRatio`, drawn from a seeded
 *   PRNG so a failing run can be replayed.
 */
import net from 'node:net';
import { seededRandom as prng } from '../../agent/src/sim/random.js';

export type ProxyMode = 'pass' | 'cut' | 'hang' | 'delay' | 'drop';

export interface ProxyOptions {
  targetPort: number;
  targetHost?: string;
  /** Listen port; 0 = any free port (kept across cut/pass). */
  port?: number;
  /** Seed of the drop PRNG. */
  seed?: number;
}

export interface ProxyStats {
  connections: number;
  bytesUp: number;
  bytesDown: number;
  /** Connections closed on purpose (cut or drop). */
  closedByFault: number;
}

/** The simulator's seeded PRNG: enough to pick which chunk drops, reproducibly. */
export { prng };

interface Pair {
  client: net.Socket;
  upstream: net.Socket | null;
  timers: Set<NodeJS.Timeout>;
  /** Chunks that arrived while hung, delivered in order when bytes flow again. */
  held: Array<{ chunk: Buffer; to: net.Socket; dir: 'up' | 'down' }>;
}

export class FaultProxy {
  private readonly options: ProxyOptions;
  private server: net.Server | null = null;
  private boundPort = 0;
  private modeValue: ProxyMode = 'pass';
  private delayMs = 0;
  private dropRatio = 0;
  private readonly random: () => number;
  private readonly pairs = new Set<Pair>();
  readonly stats: ProxyStats = { connections: 0, bytesUp: 0, bytesDown: 0, closedByFault: 0 };

  constructor(options: ProxyOptions) {
    this.options = options;
    this.random = prng(options.seed ?? 1);
  }

  get port(): number {
    return this.boundPort;
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.boundPort}`;
  }

  get mode(): ProxyMode {
    return this.modeValue;
  }

  /** Open connections right now. */
  get openConnections(): number {
    return this.pairs.size;
  }

  async start(): Promise<void> {
    await this.listen(this.options.port ?? 0);
  }

  private listen(port: number): Promise<void> {
    const server = net.createServer((client) => this.accept(client));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        const addr = server.address();
        this.boundPort = typeof addr === 'object' && addr !== null ? addr.port : 0;
        resolve();
      });
    });
  }

  private closeListener(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server) return Promise.resolve();
    return new Promise((resolve) => server.close(() => resolve()));
  }

  private accept(client: net.Socket): void {
    if (this.modeValue === 'cut') {
      // Refused: the listener stays bound through a cut (closing it let another process take the
      // port before the uplink came back: EADDRINUSE in a loaded CI run), so reset at once instead.
      client.on('error', () => {});
      client.resetAndDestroy();
      return;
    }
    this.stats.connections++;
    const pair: Pair = { client, upstream: null, timers: new Set(), held: [] };
    this.pairs.add(pair);
    client.on('error', () => this.destroy(pair));
    client.on('close', () => this.destroy(pair));
    if (this.modeValue === 'hang') {
      client.pause();
      return;
    }
    const upstream = net.connect({ host: this.options.targetHost ?? '127.0.0.1', port: this.options.targetPort });
    pair.upstream = upstream;
    upstream.on('error', () => this.destroy(pair));
    upstream.on('close', () => this.destroy(pair));
    client.on('data', (chunk: Buffer) => this.forward(pair, chunk, upstream, 'up'));
    upstream.on('data', (chunk: Buffer) => this.forward(pair, chunk, client, 'down'));
  }

  private forward(pair: Pair, chunk: Buffer, to: net.Socket, dir: 'up' | 'down'): void {
    switch (this.modeValue) {
      case 'hang':
        pair.held.push({ chunk, to, dir });
        return;
      case 'cut':
        return;
      case 'drop':
        if (this.random() < this.dropRatio) {
          this.stats.closedByFault++;
          this.destroy(pair);
          return;
        }
        break;
      case 'delay': {
        const t = setTimeout(() => {
          pair.timers.delete(t);
          this.write(to, chunk, dir);
        }, this.delayMs);
        pair.timers.add(t);
        return;
      }
      default:
        break;
    }
    this.write(to, chunk, dir);
  }

  private write(to: net.Socket, chunk: Buffer, dir: 'up' | 'down'): void {
    if (to.destroyed) return;
    if (dir === 'up') this.stats.bytesUp += chunk.length;
    else this.stats.bytesDown += chunk.length;
    to.write(chunk);
  }

  private destroy(pair: Pair): void {
    if (!this.pairs.delete(pair)) return;
    for (const t of pair.timers) clearTimeout(t);
    pair.timers.clear();
    pair.client.destroy();
    pair.upstream?.destroy();
  }

  private dropAll(): void {
    for (const pair of [...this.pairs]) {
      this.stats.closedByFault++;
      this.destroy(pair);
    }
  }

  /** Bytes flow again. */
  async pass(): Promise<void> {
    const wasHung = this.modeValue === 'hang';
    this.modeValue = 'pass';
    if (wasHung) {
      for (const pair of [...this.pairs]) {
        // Accepted while hung, never connected upstream: the client sees a reset and retries.
        if (!pair.upstream) {
          this.destroy(pair);
          continue;
        }
        for (const h of pair.held.splice(0)) this.write(h.to, h.chunk, h.dir);
        pair.client.resume();
        pair.upstream.resume();
      }
    }
    if (!this.server) await this.listen(this.boundPort);
  }

  /** The uplink is gone: existing connections die, new ones are reset as soon as they connect. */
  async cut(): Promise<void> {
    if (!this.server) await this.listen(this.boundPort);
    this.modeValue = 'cut';
    this.dropAll();
  }

  /** Connections stay up, nothing moves. */
  async hang(): Promise<void> {
    if (!this.server) await this.listen(this.boundPort);
    this.modeValue = 'hang';
    // Paused sockets leave bytes in the kernel buffers, as a black-holed route does.
    for (const pair of this.pairs) {
      pair.client.pause();
      pair.upstream?.pause();
    }
  }

  /** Every chunk waits `ms` (both directions). */
  async delay(ms: number): Promise<void> {
    if (!this.server) await this.listen(this.boundPort);
    this.delayMs = ms;
    this.modeValue = 'delay';
  }

  /** Each chunk closes its connection with probability `ratio` (seeded). */
  async drop(ratio: number): Promise<void> {
    if (!this.server) await this.listen(this.boundPort);
    this.dropRatio = ratio;
    this.modeValue = 'drop';
  }

  /** Closes the listener and every connection and timer. */
  async stop(): Promise<void> {
    this.modeValue = 'cut';
    this.dropAll();
    await this.closeListener();
  }
}
