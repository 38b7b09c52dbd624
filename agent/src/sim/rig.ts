/**
 * A simulated rig: a real server on 127.0.0.1 speaking either the cgminer API (Antminer S19-like
 * replies, modern `STATS[0].chain[]`, NUL-terminated, multi-commands) or AxeOS HTTP
 * (`GET /api/system/info`), with noisy figures and controllable faults.
 *
 * Behaviour rules (documented because tests and the diagnosis rely on them):
 * - Hashrate per board is nominal / boards ±2 %; a dead board hashes 0 and reports 0 chips.
 * - `overheat()`: chips at ~97 °C and thermal throttling to 50 % hashrate.
 * - `stopFan(i)`: that fan reads 0 rpm and chips run 12 °C hotter (no throttling by itself).
 * - Pool unreachable (own `poolDisconnect()` or the attached uplink cut / pool outage): the pool
 *   reads `Dead`, `Stratum Active` false, the last share time stops (so its age grows), and the
 *   ASICs keep hashing on the last job for `workDrainMs` (default 20 s), then drop to 0: no new work.
 * - `powerCut()`: the port refuses connections; `powerRestore()` brings it back on the same port
 *   with uptime and counters reset (state lost), hardware faults kept (a dead board stays dead).
 * - `hang()`: accepts connections and never answers; `garbage()`: answers non-JSON; `heal()`
 *   clears every fault (and restores power).
 * - Power draw (for a meter, `powerW()`): idle 120 W plus each hashing board's share of nominal.
 *   The cgminer API does not report power (stock Antminer firmware does not); AxeOS does.
 * Deterministic for a seed given the same sequence of requests.
 */
import http from 'node:http';
import net from 'node:net';
import type { RigTarget } from '../targets.js';
import { SwitchableListener } from './listener.js';
import { noisy, type Random, seededRandom } from './random.js';
import type { SimUplink } from './uplink.js';

export type SimRigApi = 'cgminer' | 'axeos';

export interface SimRigOptions {
  id: string;
  api?: SimRigApi;
  seed?: number;
  model?: string;
  /** Hashboards (cgminer: default 3; axeos: always 1). */
  boards?: number;
  chipsPerBoard?: number;
  fans?: number;
  nominalHashrateHs?: number;
  nominalPowerW?: number;
  /** The pool URL the rig mines on (defaults to the uplink's pool). */
  poolUrl?: string;
  uplink?: SimUplink;
  /** How long ASICs keep hashing after the pool becomes unreachable. */
  workDrainMs?: number;
  /** Reject multi-commands like old cgminer builds (tests the reader's fallback). */
  singleCommandOnly?: boolean;
  /** Clock (Unix ms); defaults to Date.now. */
  now?: () => number;
}

type Mode = 'normal' | 'hang' | 'garbage';

const IDLE_POWER_W = 120;

export class SimRig {
  readonly id: string;
  readonly api: SimRigApi;
  readonly model: string;
  readonly boards: number;
  readonly chipsPerBoard: number;
  readonly nominalHashrateHs: number;
  readonly nominalPowerW: number;
  private readonly fanCount: number;
  private readonly poolUrlText: string | undefined;
  private readonly uplink: SimUplink | undefined;
  private readonly workDrainMs: number;
  private readonly singleOnly: boolean;
  private readonly now: () => number;
  private readonly seed: number;
  private rand: Random;
  private readonly listener: SwitchableListener;

  private deadBoards = new Set<number>();
  private stoppedFans = new Set<number>();
  private overheated = false;
  private poolDisconnectedSince: number | undefined;
  private mode: Mode = 'normal';
  private powered = true;
  private bootMs = 0;
  private lastTickMs = 0;
  private acceptedShares = 0;
  private rejectedShares = 0;
  private hwErrors = 0;
  private lastShareMs: number | undefined;
  private hashedHs = 0;
  /** Requests answered since start (tests read it to prove a request reached the rig). */
  requests = 0;

  constructor(options: SimRigOptions) {
    this.id = options.id;
    this.api = options.api ?? 'cgminer';
    this.seed = options.seed ?? 1;
    this.model = options.model ?? (this.api === 'axeos' ? 'Bitaxe Gamma' : 'Antminer S19 Pro');
    this.boards = this.api === 'axeos' ? 1 : (options.boards ?? 3);
    this.chipsPerBoard = options.chipsPerBoard ?? (this.api === 'axeos' ? 1 : 114);
    this.fanCount = options.fans ?? (this.api === 'axeos' ? 1 : 4);
    this.nominalHashrateHs = options.nominalHashrateHs ?? (this.api === 'axeos' ? 1.2e12 : 110e12);
    this.nominalPowerW = options.nominalPowerW ?? (this.api === 'axeos' ? 18 : 3250);
    this.poolUrlText = options.poolUrl;
    this.uplink = options.uplink;
    this.workDrainMs = options.workDrainMs ?? 20_000;
    this.singleOnly = options.singleCommandOnly ?? false;
    this.now = options.now ?? Date.now;
    this.rand = seededRandom(this.seed);
    this.listener = new SwitchableListener(() =>
      this.api === 'axeos'
        ? http.createServer((req, res) => this.serveHttp(req, res))
        : net.createServer((s) => this.serveCgminer(s)),
    );
  }

  /** The API port on 127.0.0.1 (stable across power cuts). */
  get port(): number {
    return this.listener.port;
  }

  async start(): Promise<void> {
    this.boot();
    await this.listener.open();
  }

  async stop(): Promise<void> {
    await this.listener.close();
  }

  /** The agent config entry for this rig. */
  target(extra: Partial<RigTarget> = {}): RigTarget {
    return {
      id: this.id,
      api: this.api,
      host: '127.0.0.1',
      port: this.port,
      model: this.model,
      nominal_hashrate_hs: this.nominalHashrateHs,
      nominal_power_w: this.nominalPowerW,
      ...extra,
    };
  }

  killBoard(i: number): void {
    this.deadBoards.add(i);
  }
  stopFan(i: number): void {
    this.stoppedFans.add(i);
  }
  overheat(): void {
    this.overheated = true;
  }
  poolDisconnect(): void {
    this.poolDisconnectedSince ??= this.now();
  }
  hang(): void {
    this.mode = 'hang';
    this.listener.dropConnections();
  }
  garbage(): void {
    this.mode = 'garbage';
  }

  /** Power is cut: the port refuses connections and the rig's state is lost. */
  async powerCut(): Promise<void> {
    this.powered = false;
    await this.listener.close();
  }

  /** Power is back: the firmware boots fresh (uptime 0, counters 0) on the same port. */
  async powerRestore(): Promise<void> {
    if (this.powered) return;
    this.powered = true;
    this.mode = 'normal';
    this.poolDisconnectedSince = undefined;
    this.boot();
    await this.listener.open();
  }

  /** Clears every fault and restores power. */
  async heal(): Promise<void> {
    this.deadBoards.clear();
    this.stoppedFans.clear();
    this.overheated = false;
    this.poolDisconnectedSince = undefined;
    this.mode = 'normal';
    await this.powerRestore();
  }

  /** What a meter on this rig's outlet reads now (W). */
  powerW(): number {
    if (!this.powered) return 0;
    const t = this.now();
    const share = this.nominalPowerW - IDLE_POWER_W;
    let w = IDLE_POWER_W;
    for (let b = 0; b < this.boards; b++) w += (this.boardRateFactor(b, t) * share) / this.boards;
    return Math.round(noisy(this.rand, w, 0.01));
  }

  private boot(): void {
    const t = this.now();
    this.bootMs = t;
    this.lastTickMs = t;
    this.acceptedShares = 0;
    this.rejectedShares = 0;
    this.hwErrors = 0;
    this.hashedHs = 0;
    this.lastShareMs = undefined;
    this.rand = seededRandom(this.seed);
  }

  private poolDownSince(): number | undefined {
    const up = this.uplink?.poolDownSinceMs;
    const own = this.poolDisconnectedSince;
    if (up === undefined) return own;
    return own === undefined ? up : Math.min(up, own);
  }

  /** 0..1: how much of its nominal share a board hashes at time t. */
  private boardRateFactor(b: number, t: number): number {
    if (this.deadBoards.has(b)) return 0;
    const down = this.poolDownSince();
    if (down !== undefined && t - down >= this.workDrainMs) return 0;
    return this.overheated ? 0.5 : 1;
  }

  /** Advances share counters to time t. */
  private tick(t: number): void {
    const dtS = Math.max(0, (t - this.lastTickMs) / 1000);
    this.lastTickMs = t;
    const rateHs = this.totalRate(t);
    this.hashedHs += rateHs * dtS;
    if (this.poolDownSince() === undefined && rateHs > 0 && dtS > 0) {
      // ~1 share per 2 s per 100 TH/s: enough movement for tests to see counters grow.
      const shares = Math.max(1, Math.round((dtS * rateHs) / 200e12));
      this.acceptedShares += shares;
      if (this.rand() < 0.01) this.rejectedShares++;
      this.hwErrors += this.rand() < 0.2 ? 1 : 0;
      this.lastShareMs = t - Math.floor(this.rand() * Math.min(2000, dtS * 1000));
    }
  }

  private boardRate(b: number, t: number): number {
    const f = this.boardRateFactor(b, t);
    return f === 0 ? 0 : noisy(this.rand, (this.nominalHashrateHs / this.boards) * f, 0.02);
  }

  private totalRate(t: number): number {
    let sum = 0;
    for (let b = 0; b < this.boards; b++) sum += this.boardRateFactor(b, t) * (this.nominalHashrateHs / this.boards);
    return sum;
  }

  private chipTemp(b: number): number {
    if (this.deadBoards.has(b)) return 0;
    let base = 66 + b;
    if (this.stoppedFans.size > 0) base += 12;
    if (this.overheated) base = 97;
    return Math.round(noisy(this.rand, base, 0.02));
  }

  private fanRpm(i: number): number {
    if (this.stoppedFans.has(i)) return 0;
    const base = this.overheated ? 6600 : 5400;
    return Math.round(noisy(this.rand, base, 0.02) / 10) * 10;
  }

  private poolUrl(): string {
    return this.poolUrlText ?? this.uplink?.poolUrl ?? 'stratum+tcp://pool.example.org:3333';
  }

  // --- cgminer API -------------------------------------------------------------------------

  private serveCgminer(socket: net.Socket): void {
    let buffered = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      if (buffered.length > 65536) return void socket.destroy();
      let request: { command?: unknown } | undefined;
      try {
        request = JSON.parse(buffered.replace(/\0+$/, '')) as { command?: unknown };
      } catch {
        return; // wait for the rest of the request
      }
      if (this.mode === 'hang') return;
      this.requests++;
      if (this.mode === 'garbage') {
        socket.end(`<html>\x01\x02 firmware panic ${Math.floor(this.rand() * 1e6)} }{ ]]\0`);
        return;
      }
      const command = typeof request.command === 'string' ? request.command : '';
      socket.end(`${JSON.stringify(this.cgminerReply(command))}\0`);
    });
  }

  private status(code: number, msg: string, ok = true) {
    return [
      {
        STATUS: ok ? 'S' : 'E',
        When: Math.floor(this.now() / 1000),
        Code: code,
        Msg: msg,
        Description: 'cgminer 4.11.1',
      },
    ];
  }

  private cgminerReply(command: string): unknown {
    const t = this.now();
    this.tick(t);
    const parts = command.split('+');
    if (parts.length > 1) {
      if (this.singleOnly) return { STATUS: this.status(14, 'Invalid command', false), id: 1 };
      const out: Record<string, unknown> = {};
      for (const p of parts) out[p] = [this.single(p, t)];
      out.id = 1;
      return out;
    }
    return this.single(command, t);
  }

  private single(command: string, t: number): unknown {
    const elapsedS = Math.floor((t - this.bootMs) / 1000);
    switch (command) {
      case 'summary': {
        const rate = noisy(this.rand, this.totalRate(t), 0.01);
        const avg = elapsedS > 0 ? this.hashedHs / elapsedS : 0;
        return {
          STATUS: this.status(11, 'Summary'),
          SUMMARY: [
            {
              Elapsed: elapsedS,
              'GHS 5s': (rate / 1e9).toFixed(2),
              'GHS av': Math.round((avg / 1e9) * 100) / 100,
              'GHS 30m': Math.round((avg / 1e9) * 100) / 100,
              'Found Blocks': 0,
              Getworks: this.acceptedShares * 3,
              Accepted: this.acceptedShares,
              Rejected: this.rejectedShares,
              'Hardware Errors': this.hwErrors,
              Utility: elapsedS > 0 ? Math.round((this.acceptedShares / elapsedS) * 6000) / 100 : 0,
              Discarded: this.acceptedShares * 2,
              Stale: 0,
              'Get Failures': 0,
              'Local Work': this.acceptedShares * 40,
              'Remote Failures': 0,
              'Network Blocks': Math.floor(elapsedS / 600),
              'Total MH': Math.round(this.hashedHs / 1e6),
              'Device Hardware%': 0.0001,
              'Device Rejected%': 0.0,
              'Pool Rejected%': 0.0,
              'Pool Stale%': 0.0,
              'Last getwork': Math.floor(t / 1000),
            },
          ],
          id: 1,
        };
      }
      case 'stats': {
        const chain = Array.from({ length: this.boards }, (_, b) => {
          const dead = this.deadBoards.has(b);
          const chip = this.chipTemp(b);
          return {
            index: b,
            freq_avg: dead ? 0 : 525,
            rate_ideal: Math.round((this.nominalHashrateHs / this.boards / 1e9) * 100) / 100,
            rate_real: Math.round((this.boardRate(b, t) / 1e9) * 100) / 100,
            asic_num: dead ? 0 : this.chipsPerBoard,
            temp_pic: dead ? [0, 0, 0, 0] : [chip - 14, chip - 14, chip - 8, chip - 8],
            temp_pcb: dead ? [0, 0, 0, 0] : [chip - 16, chip - 16, chip - 10, chip - 10],
            temp_chip: dead ? [0, 0, 0, 0] : [chip - 6, chip - 6, chip, chip],
            hw: dead ? 0 : Math.floor(this.hwErrors / this.boards),
            eeprom_loaded: true,
            sn: `SIMSN${this.seed}B${b}`,
            hwp: 0,
          };
        });
        return {
          STATUS: this.status(70, 'CGMiner stats'),
          INFO: { miner_version: 'sim.1.0', CompileTime: 'Sat Jan 1 00:00:00 CST 2022', type: this.model },
          STATS: [
            {
              STATS: 0,
              ID: 'BTM_SOC0',
              Elapsed: elapsedS,
              rate_5s: Math.round((this.totalRate(t) / 1e9) * 100) / 100,
              rate_30m: Math.round((this.totalRate(t) / 1e9) * 100) / 100,
              rate_avg: elapsedS > 0 ? Math.round((this.hashedHs / elapsedS / 1e9) * 100) / 100 : 0,
              rate_ideal: Math.round((this.nominalHashrateHs / 1e9) * 100) / 100,
              rate_unit: 'GH/s',
              chain_num: this.boards,
              fan_num: this.fanCount,
              fan: Array.from({ length: this.fanCount }, (_, i) => this.fanRpm(i)),
              hwp_total: 0,
              'miner-mode': 0,
              'freq-level': 100,
              chain,
            },
          ],
          id: 1,
        };
      }
      case 'pools': {
        const down = this.poolDownSince() !== undefined;
        const lastShareAgeS = this.lastShareMs === undefined ? undefined : Math.floor((t - this.lastShareMs) / 1000);
        return {
          STATUS: this.status(7, '1 Pool(s)'),
          POOLS: [
            {
              POOL: 0,
              URL: this.poolUrl(),
              Status: down ? 'Dead' : 'Alive',
              Priority: 0,
              Quota: 1,
              'Long Poll': 'N',
              Getworks: this.acceptedShares * 3,
              Accepted: this.acceptedShares,
              Rejected: this.rejectedShares,
              Works: this.acceptedShares * 50,
              Discarded: this.acceptedShares * 2,
              Stale: 0,
              'Get Failures': down ? 1 : 0,
              'Remote Failures': 0,
              User: `sim.${this.id}`,
              // bmminer writes the age of the last share as H:MM:SS.
              'Last Share Time': lastShareAgeS === undefined ? '0' : hms(lastShareAgeS),
              Diff: '65.5K',
              'Diff1 Shares': 0,
              'Proxy Type': '',
              Proxy: '',
              'Difficulty Accepted': this.acceptedShares * 65536,
              'Difficulty Rejected': this.rejectedShares * 65536,
              'Difficulty Stale': 0,
              'Last Share Difficulty': 65536,
              'Work Difficulty': 65536,
              'Has Stratum': true,
              'Stratum Active': !down,
              'Stratum URL': down ? '' : this.poolUrl().replace(/^stratum\+tcp:\/\//, ''),
              'Stratum Difficulty': 65536,
              'Has GBT': false,
              'Best Share': 1234567,
              'Pool Rejected%': 0,
              'Pool Stale%%': 0,
              'Bad Work': 0,
              'Current Block Height': 0,
              'Current Block Version': 536870912,
            },
          ],
          id: 1,
        };
      }
      case 'devs':
        return {
          STATUS: this.status(9, `${this.boards} ASC(s)`),
          DEVS: Array.from({ length: this.boards }, (_, b) => ({
            ASC: b,
            Name: 'BTM_SOC0',
            ID: b,
            Enabled: 'Y',
            Status: this.deadBoards.has(b) ? 'Dead' : 'Alive',
            Temperature: this.chipTemp(b),
            'MHS av': Math.round(this.boardRate(b, t) / 1e6),
            'MHS 5s': Math.round(this.boardRate(b, t) / 1e6),
            Accepted: Math.floor(this.acceptedShares / this.boards),
            Rejected: 0,
            'Hardware Errors': Math.floor(this.hwErrors / this.boards),
          })),
          id: 1,
        };
      case 'version':
        return {
          STATUS: this.status(22, 'CGMiner versions'),
          VERSION: [{ CGMiner: '4.11.1', API: '3.7', Miner: 'sim.1.0', CompileTime: '2022', Type: this.model }],
          id: 1,
        };
      default:
        return { STATUS: this.status(14, 'Invalid command', false), id: 1 };
    }
  }

  // --- AxeOS HTTP --------------------------------------------------------------------------

  private serveHttp(req: http.IncomingMessage, res: http.ServerResponse): void {
    req.resume();
    if (this.mode === 'hang') return;
    this.requests++;
    if (this.mode === 'garbage') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"power": 17.2, "hashRate": 1180.5, "te');
      return;
    }
    if (req.url !== '/api/system/info') {
      res.writeHead(404).end('not found');
      return;
    }
    const t = this.now();
    this.tick(t);
    const down = this.poolDownSince() !== undefined;
    const pool = new URL(this.poolUrl().replace(/^stratum\+tcp:/, 'http:'));
    const info = {
      power: Math.round(noisy(this.rand, this.powerW(), 0.01) * 100) / 100,
      voltage: 5112.5,
      current: 3406.25,
      temp: this.chipTemp(0) || 0,
      vrTemp: this.overheated ? 88 : 52,
      maxPower: 40,
      nominalVoltage: 5,
      hashRate: Math.round((noisy(this.rand, this.totalRate(t), 0.02) / 1e9) * 100) / 100,
      expectedHashrate: Math.round(this.nominalHashrateHs / 1e9),
      bestDiff: '1.02G',
      bestSessionDiff: '45.3M',
      freeHeap: 214532,
      coreVoltage: 1150,
      coreVoltageActual: 1144,
      hostname: this.id,
      macAddr: '24:58:7C:00:00:01',
      ssid: 'farm-wifi',
      wifiStatus: 'Connected!',
      sharesAccepted: this.acceptedShares,
      sharesRejected: this.rejectedShares,
      uptimeSeconds: Math.floor((t - this.bootMs) / 1000),
      asicCount: this.deadBoards.has(0) ? 0 : 1,
      smallCoreCount: 2040,
      ASICModel: 'BM1370',
      stratumURL: pool.hostname,
      stratumPort: Number(pool.port) || 3333,
      stratumUser: `sim.${this.id}`,
      fallbackStratumURL: 'solo.ckpool.org',
      fallbackStratumPort: 3333,
      fallbackStratumUser: `sim.${this.id}`,
      isUsingFallbackStratum: 0,
      responseTime: down ? 0 : 42.1,
      frequency: 525,
      version: 'v2.4.2',
      idfVersion: 'v5.3.1',
      boardVersion: '601',
      autofanspeed: 1,
      fanspeed: this.overheated ? 100 : 65,
      temptarget: 60,
      fanrpm: this.fanRpm(0),
      overheat_mode: this.overheated ? 1 : 0,
    };
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(info));
  }
}

function hms(totalS: number): string {
  const h = Math.floor(totalS / 3600);
  const m = Math.floor((totalS % 3600) / 60);
  const s = totalS % 60;
  return `${h}:${String(m).padStart(2, '0')}:${String(s).padStart(2, '0')}`;
}
