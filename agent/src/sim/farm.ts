/**
 * A simulated site: N rigs behind one uplink, plus a PDU (an HTTP power meter with one outlet per
 * rig) so `power_source: 'meter'` and power-loss evidence can be exercised. `start()`/`stop()`
 * open and close every server; `rigTargets()`/`probeTargets()` are what an agent config lists.
 */
import http from 'node:http';
import type { ProbeTarget, RigTarget } from '../targets.js';
import { SwitchableListener } from './listener.js';
import { SimRig, type SimRigApi, type SimRigOptions } from './rig.js';
import { SimUplink } from './uplink.js';

export interface SimSiteOptions {
  /** Number of rigs (default 4). */
  rigs?: number;
  /** Base seed; rig i gets seed + i. */
  seed?: number;
  /** API of rig i (default: all cgminer). */
  apiOf?: (i: number) => SimRigApi;
  /** Rig id of rig i (default `rig-001`, …). */
  idOf?: (i: number) => string;
  /** Options passed to every rig. */
  rig?: Partial<Omit<SimRigOptions, 'id' | 'api' | 'seed' | 'uplink'>>;
  /** Give rigs a `meter` target on the sim PDU (default false). */
  metered?: boolean;
  now?: () => number;
}

export class SimSite {
  readonly uplink: SimUplink;
  readonly rigs: SimRig[];
  private readonly metered: boolean;
  private readonly pdu: SwitchableListener;

  constructor(options: SimSiteOptions = {}) {
    const n = options.rigs ?? 4;
    const seed = options.seed ?? 1;
    const now = options.now ?? Date.now;
    this.metered = options.metered ?? false;
    this.uplink = new SimUplink({ now });
    this.rigs = Array.from(
      { length: n },
      (_, i) =>
        new SimRig({
          ...options.rig,
          id: options.idOf?.(i) ?? `rig-${String(i + 1).padStart(3, '0')}`,
          api: options.apiOf?.(i) ?? 'cgminer',
          seed: seed + i,
          uplink: this.uplink,
          now,
        }),
    );
    this.pdu = new SwitchableListener(() =>
      http.createServer((req, res) => {
        req.resume();
        const outlets: Record<string, { power_w: number }> = {};
        for (const r of this.rigs) outlets[r.id] = { power_w: r.powerW() };
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ outlets }));
      }),
    );
  }

  async start(): Promise<void> {
    await this.uplink.start();
    await Promise.all([this.pdu.open(), ...this.rigs.map((r) => r.start())]);
  }

  async stop(): Promise<void> {
    await Promise.all([this.uplink.stop(), this.pdu.close(), ...this.rigs.map((r) => r.stop())]);
  }

  /** The rig by id. */
  rig(id: string): SimRig {
    const r = this.rigs.find((x) => x.id === id);
    if (!r) throw new Error(`No simulated rig ${id}`);
    return r;
  }

  /** Agent config entries for every rig (with a PDU meter when the site is metered). */
  rigTargets(): RigTarget[] {
    return this.rigs.map((r) =>
      r.target(
        this.metered
          ? {
              meter: {
                kind: 'http-json',
                url: `http://127.0.0.1:${this.pdu.port}/outlets`,
                field: `outlets.${r.id}.power_w`,
              },
            }
          : {},
      ),
    );
  }

  /** Agent config entries for the uplink probes. */
  probeTargets(): ProbeTarget[] {
    return this.uplink.probeTargets();
  }
}

/** Creates (does not start) a simulated site. */
export function createSimSite(options: SimSiteOptions = {}): SimSite {
  return new SimSite(options);
}
