/**
 * Watches rig states as the collector publishes them on its WebSocket live view (`/live`), from
 * the outside, the way an operator's page sees them: one client per watched host, subscribed to
 * that host only, so the collector serializes a few hundred rigs per report for it and never the
 * whole fleet. Every state change of a watched rig is kept with the wall-clock time its frame
 * arrived (Date.now(), the same clock the simulated agents stamp their reports with).
 *
 * Connect before the fleet is born: the first snapshot is then empty, and a fleet-wide snapshot of
 * tens of thousands of rigs never loads the collector being measured.
 *
 *   const watch = new StateWatch(`ws://127.0.0.1:${port}/live`, [{ site: 'farm0', host: 'h0' }]);
 *   await watch.start(); …; watch.firstAt('farm0', 'h0', 'rig-0001', 'hardware_fault', sinceMs);
 */
import { WebSocket } from 'ws';

export interface StateChange {
  state: string;
  /** Wall-clock ms when the frame carrying the new state arrived. */
  atMs: number;
}

export interface WatchedHost {
  site: string;
  host: string;
}

interface LiveRigFrame {
  site: string;
  host: string;
  rig: string;
  state: string;
}

interface LiveFrame {
  type: string;
  reason?: string;
  rigs?: LiveRigFrame[];
}

/** State changes kept per rig (a rig flapping for a whole run cannot grow memory without bound). */
const MAX_CHANGES_PER_RIG = 1000;

export class StateWatch {
  private readonly url: string;
  private readonly hosts: WatchedHost[];
  private readonly clients: WebSocket[] = [];
  private readonly changes = new Map<string, StateChange[]>();
  /** Frames that could not be read, and closes before `stop()`: both mean the figures are partial. */
  problems = 0;
  private stopping = false;

  constructor(url: string, hosts: WatchedHost[]) {
    this.url = url;
    this.hosts = hosts;
  }

  /** Connects one client per host and resolves once each has its host-filtered snapshot. */
  async start(timeoutMs = 30_000): Promise<void> {
    await Promise.all(this.hosts.map((h) => this.connect(h, timeoutMs)));
  }

  private connect(h: WatchedHost, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url);
      this.clients.push(ws);
      const timer = setTimeout(() => {
        reject(new Error(`Live view: no snapshot for ${h.site}/${h.host} within ${timeoutMs} ms`));
        ws.terminate();
      }, timeoutMs);
      ws.on('open', () => ws.send(JSON.stringify({ type: 'subscribe', site: h.site, host: h.host })));
      ws.on('message', (data) => {
        const atMs = Date.now();
        let frame: LiveFrame;
        try {
          frame = JSON.parse(String(data)) as LiveFrame;
        } catch {
          this.problems++;
          return;
        }
        if (frame.type === 'snapshot' && frame.reason === 'subscribe') {
          clearTimeout(timer);
          resolve();
        }
        if (frame.type !== 'snapshot' && frame.type !== 'delta') return;
        for (const r of frame.rigs ?? []) {
          // Before the subscribe snapshot, the connect snapshot covers the whole (still empty) fleet.
          if (r.site !== h.site || r.host !== h.host) continue;
          this.record(`${r.site}/${r.host}/${r.rig}`, r.state, atMs);
        }
      });
      ws.on('error', (err) => {
        clearTimeout(timer);
        this.problems++;
        reject(err);
      });
      ws.on('close', () => {
        if (!this.stopping) this.problems++;
      });
    });
  }

  private record(key: string, state: string, atMs: number): void {
    let list = this.changes.get(key);
    if (!list) {
      list = [];
      this.changes.set(key, list);
    }
    if (list[list.length - 1]?.state === state || list.length >= MAX_CHANGES_PER_RIG) return;
    list.push({ state, atMs });
  }

  /** The rig's state as last seen at or before `atMs` (undefined: never seen by then). */
  stateAt(site: string, host: string, rig: string, atMs: number): string | undefined {
    let state: string | undefined;
    for (const c of this.changes.get(`${site}/${host}/${rig}`) ?? []) {
      if (c.atMs > atMs) break;
      state = c.state;
    }
    return state;
  }

  /** When the rig was first seen in `state` at or after `sinceMs` (undefined: not yet). */
  firstAt(site: string, host: string, rig: string, state: string, sinceMs: number): number | undefined {
    for (const c of this.changes.get(`${site}/${host}/${rig}`) ?? []) {
      if (c.atMs >= sinceMs && c.state === state) return c.atMs;
    }
    return undefined;
  }

  /** Every state the rig was seen entering at or after `sinceMs`, in order. */
  statesSince(site: string, host: string, rig: string, sinceMs: number): string[] {
    return (this.changes.get(`${site}/${host}/${rig}`) ?? []).filter((c) => c.atMs >= sinceMs).map((c) => c.state);
  }

  stop(): void {
    this.stopping = true;
    for (const ws of this.clients.splice(0)) ws.terminate();
  }
}
