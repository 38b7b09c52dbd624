/**
 * What a site's internet looks like from inside the farm, all on 127.0.0.1: the LAN gateway (a
 * TCP port that stays up, it is on our side of the uplink), a stratum pool that answers
 * `mining.subscribe`, two HTTP "internet" sites, and a DNS server that resolves the pool's name.
 *
 * Faults: `cut()` (everything behind the uplink stops answering: connections hang, or with
 * `'refuse'` are refused; DNS queries are lost), `poolOutage()` (only the pool fails), `dnsFailure()`
 * (only DNS fails: SERVFAIL), `restore()`. Rigs attached to the uplink read `poolReachable()`:
 * a rig that already resolved its pool keeps its connection through a DNS failure.
 */
import http from 'node:http';
import net from 'node:net';
import type { ProbeTarget } from '../targets.js';
import { SimDnsServer } from './dns-server.js';
import { SwitchableListener } from './listener.js';

export type CutMode = 'hang' | 'refuse';

export interface SimUplinkOptions {
  /** The pool's host name, resolvable through the sim DNS server. */
  poolName?: string;
  /** The agent's clock (Unix ms); defaults to Date.now. */
  now?: () => number;
}

export class SimUplink {
  readonly poolName: string;
  private readonly now: () => number;
  private readonly gateway: SwitchableListener;
  private readonly stratum: SwitchableListener;
  private readonly web: SwitchableListener[];
  private readonly dns: SimDnsServer;
  private cutMode: CutMode | undefined;
  private poolOutageMode: CutMode | undefined;
  private dnsFailing = false;
  private poolDownSince: number | undefined;
  /** Count of `mining.subscribe` requests answered (tests use it to see the pool was asked). */
  subscribes = 0;

  constructor(options: SimUplinkOptions = {}) {
    this.poolName = options.poolName ?? 'pool.sim.hashwatch.test';
    this.now = options.now ?? Date.now;
    this.gateway = new SwitchableListener(() => net.createServer((s) => s.end()));
    this.stratum = new SwitchableListener(() => net.createServer((s) => this.serveStratum(s)));
    this.web = [0, 1].map(
      () =>
        new SwitchableListener(() =>
          http.createServer((req, res) => {
            if (this.cutMode) return; // the request vanishes into the cut uplink
            req.resume();
            res.writeHead(204).end();
          }),
        ),
    );
    this.dns = new SimDnsServer(new Map([[this.poolName.toLowerCase(), '127.0.0.1']]));
  }

  async start(): Promise<void> {
    await Promise.all([this.gateway.open(), this.stratum.open(), ...this.web.map((w) => w.open()), this.dns.start()]);
  }

  async stop(): Promise<void> {
    await Promise.all([this.gateway.close(), this.stratum.close(), ...this.web.map((w) => w.close()), this.dns.stop()]);
  }

  /** The pool's stratum port (127.0.0.1). */
  get stratumPort(): number {
    return this.stratum.port;
  }
  get dnsPort(): number {
    return this.dns.port;
  }
  get poolUrl(): string {
    return `stratum+tcp://${this.poolName}:${this.stratum.port}`;
  }

  /** Whether rigs can reach their pool now. */
  poolReachable(): boolean {
    return this.cutMode === undefined && this.poolOutageMode === undefined;
  }
  /** Since when the pool is unreachable (Unix ms), undefined while reachable. */
  get poolDownSinceMs(): number | undefined {
    return this.poolDownSince;
  }

  /** The uplink goes down: nothing behind it answers. */
  async cut(mode: CutMode = 'hang'): Promise<void> {
    this.cutMode = mode;
    this.markPoolDown();
    this.dns.mode = 'silent';
    this.stratum.dropConnections();
    for (const w of this.web) w.dropConnections();
    if (mode === 'refuse') await Promise.all([this.stratum.close(), ...this.web.map((w) => w.close())]);
  }

  /** Only the pool fails; the internet is fine. */
  async poolOutage(mode: CutMode = 'refuse'): Promise<void> {
    this.poolOutageMode = mode;
    this.markPoolDown();
    this.stratum.dropConnections();
    if (mode === 'refuse') await this.stratum.close();
  }

  /** Only DNS fails (SERVFAIL); connections already made keep working. */
  dnsFailure(): void {
    this.dnsFailing = true;
    if (!this.cutMode) this.dns.mode = 'servfail';
  }

  /** Everything answers again. */
  async restore(): Promise<void> {
    this.cutMode = undefined;
    this.poolOutageMode = undefined;
    this.dnsFailing = false;
    this.poolDownSince = undefined;
    this.dns.mode = 'answer';
    await Promise.all([this.stratum.open(), ...this.web.map((w) => w.open())]);
  }

  /** Probe targets covering gateway, DNS, internet and pool, as an agent config would list them. */
  probeTargets(): ProbeTarget[] {
    return [
      { target: 'gateway', kind: 'gateway', role: 'gateway', address: `127.0.0.1:${this.gateway.port}` },
      {
        target: 'dns',
        kind: 'dns',
        role: 'dns',
        address: this.poolName,
        resolver: `127.0.0.1:${this.dns.port}`,
      },
      ...this.web.map(
        (w, i): ProbeTarget => ({
          target: `internet-${i + 1}`,
          kind: 'http',
          role: 'internet',
          address: `http://127.0.0.1:${w.port}/`,
        }),
      ),
      { target: 'pool', kind: 'stratum', role: 'pool', address: `127.0.0.1:${this.stratum.port}` },
    ];
  }

  private markPoolDown(): void {
    this.poolDownSince ??= this.now();
    if (this.dnsFailing) this.dns.mode = this.cutMode ? 'silent' : 'servfail';
  }

  private serveStratum(socket: net.Socket): void {
    let buffered = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      if (!this.poolReachable()) return; // accepted, then silence
      buffered += chunk;
      if (buffered.length > 65536) return void socket.destroy();
      let nl = buffered.indexOf('\n');
      while (nl >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        let req: { id?: unknown; method?: unknown } | undefined;
        try {
          req = JSON.parse(line) as { id?: unknown; method?: unknown };
        } catch {
          req = undefined;
        }
        if (req?.method === 'mining.subscribe') {
          this.subscribes++;
          socket.write(
            `${JSON.stringify({
              id: req.id ?? null,
              result: [
                [
                  ['mining.set_difficulty', '1'],
                  ['mining.notify', '1'],
                ],
                '08000002',
                4,
              ],
              error: null,
            })}\n`,
          );
        } else if (req) {
          socket.write(
            `${JSON.stringify({ id: req.id ?? null, result: null, error: [20, 'Unsupported method', null] })}\n`,
          );
        }
        nl = buffered.indexOf('\n');
      }
    });
  }
}
