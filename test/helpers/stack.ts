/**
 * A whole hashwatch deployment for fault tests: one collector process (embedded aedes or an
 * external broker), N agent processes each polling its own simulated farm (`createSimSite`), each
 * agent reaching the broker through its own FaultProxy. Also the two sides of the delivery check:
 *
 * - the producer's truth: a `SpoolLedger` samples every agent's spool file (read-only) while the
 *   test runs, so every (boot_id, seq) the agent ever committed is known even after it is acked
 *   and deleted; seqs are dense from 0 per boot (agent/src/agent.ts), so a hole below the highest
 *   seq seen is a report produced and never stored, even if the sampler missed it;
 * - the consumer's view: `readStore` opens the collector's SQLite file read-only and lists the
 *   stored (host, boot_id, seq) and the (rig, ts) duplicates.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { parse as parseYaml } from 'yaml';
import { createSimSite, type SimSite } from '../../agent/src/sim/index.js';
import {
  AGENT_CLI,
  COLLECTOR_CLI,
  freePort,
  type LogLine,
  Proc,
  requireBuilt,
  tempDir,
  waitFor,
  writeYaml,
} from './proc.js';
import { FaultProxy } from './proxy.js';

type Obj = Record<string, unknown>;

/** Deep-merges plain objects (`extra` wins); arrays and scalars are replaced. */
export function merge(base: Obj, extra: Obj | undefined): Obj {
  if (!extra) return base;
  const out: Obj = { ...base };
  for (const [k, v] of Object.entries(extra)) {
    const b = out[k];
    out[k] =
      v && typeof v === 'object' && !Array.isArray(v) && b && typeof b === 'object' && !Array.isArray(b)
        ? merge(b as Obj, v as Obj)
        : v;
  }
  return out;
}

export interface CollectorOptions {
  name?: string;
  /** Anonymous MQTT on the embedded broker (loopback only); default true. */
  anonymous?: boolean;
  /** Bearer token on /api/*; default none. */
  apiToken?: string;
  /** External broker instead of the embedded one. */
  external?: { url: string; username?: string; password?: string; clientId?: string };
  /** Store file; default `<dir>/hw.db` (the disk-full test points it at a small filesystem). */
  dbPath?: string;
  /** Extra config merged over the generated one (snake_case keys). */
  extra?: Obj;
}

export interface CollectorHandle {
  proc: Proc;
  dir: string;
  configFile: string;
  dbPath: string;
  credentialsFile: string;
  mqttPort: number;
  httpPort: number;
  mqttUrl: string;
  /** Waits for the `Collector started` line of the current run. */
  ready(timeoutMs?: number): Promise<void>;
  /** SIGTERM (or SIGKILL) then start again with the same config, ports and database. */
  restart(how?: 'term' | 'kill'): Promise<void>;
  /** GET on the HTTP server; `token` as Bearer. Returns status and parsed JSON (or text). */
  get(path: string, token?: string): Promise<{ status: number; body: unknown; text: string }>;
}

/** Starts a collector process on fixed free loopback ports (so a restart keeps them). */
export async function startCollector(options: CollectorOptions = {}): Promise<CollectorHandle> {
  requireBuilt(COLLECTOR_CLI);
  const dir = tempDir(options.name ?? 'collector');
  const mqttPort = await freePort();
  const httpPort = await freePort();
  const dbPath = options.dbPath ?? join(dir, 'hw.db');
  const credentialsFile = join(dir, 'credentials.yaml');
  const broker: Obj = options.external
    ? {
        mode: 'external',
        external: {
          url: options.external.url,
          username: options.external.username ?? '',
          password: options.external.password ?? '',
          client_id: options.external.clientId ?? 'hashwatch-collector',
          reconnect_period_ms: 200,
        },
      }
    : {
        mode: 'embedded',
        embedded: {
          host: '127.0.0.1',
          port: mqttPort,
          allow_anonymous: options.anonymous ?? true,
          credentials_file: credentialsFile,
        },
      };
  const config = merge(
    {
      collector_id: options.name ?? 'collector-1',
      data_dir: dir,
      log: { level: 'info' },
      store: { path: dbPath },
      http: { host: '127.0.0.1', port: httpPort, api_token: options.apiToken ?? '' },
      // The live view needs collector/web/dist (npm run build); only the security suite turns it on.
      live: { enabled: false },
      broker,
    },
    options.extra,
  );
  const configFile = join(dir, 'collector.yaml');
  writeYaml(configFile, config);
  const proc = new Proc({
    name: options.name ?? 'collector',
    script: COLLECTOR_CLI,
    args: ['run', '--config', configFile],
  });
  const ready = async (timeoutMs = 60_000) => {
    await proc.waitForLog((l) => l.msg === 'Collector started', 'collector start', timeoutMs);
  };
  proc.start();
  await ready();
  return {
    proc,
    dir,
    configFile,
    dbPath,
    credentialsFile,
    mqttPort,
    httpPort,
    mqttUrl: `mqtt://127.0.0.1:${mqttPort}`,
    ready,
    restart: async (how = 'term') => {
      if (how === 'kill') await proc.kill();
      else await proc.stop();
      proc.start();
      await ready(30_000);
    },
    get: async (path, token) => {
      const res = await fetch(`http://127.0.0.1:${httpPort}${path}`, {
        headers: token ? { authorization: `Bearer ${token}` } : {},
        signal: AbortSignal.timeout(10_000),
      });
      const text = await res.text();
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // not JSON: keep the text
      }
      return { status: res.status, body, text };
    },
  };
}

/** Issues agent credentials through the real CLI (`add-agent`); returns them from the printed snippet. */
export async function addAgentCli(
  collector: CollectorHandle,
  site: string,
  host: string,
): Promise<{ username: string; password: string }> {
  const proc = new Proc({
    name: `add-agent ${site}/${host}`,
    script: COLLECTOR_CLI,
    args: ['add-agent', site, host, '--config', collector.configFile],
  });
  let out = '';
  proc.start();
  await waitFor(() => !proc.alive, 'add-agent to finish', 30_000);
  out = proc.lines.map((l) => (typeof l.msg === 'string' ? l.msg : JSON.stringify(l))).join('\n');
  if (proc.exit?.code !== 0) throw new Error(`add-agent failed (${JSON.stringify(proc.exit)}): ${proc.stderr()}`);
  const snippet = parseYaml(out.replace(/^#.*$/gm, '')) as { broker?: { username?: string; password?: string } };
  const username = snippet.broker?.username;
  const password = snippet.broker?.password;
  if (!username || !password) throw new Error(`add-agent printed no credentials: ${out}`);
  return { username, password };
}

export interface AgentOptions {
  site: string;
  host: string;
  brokerUrl: string;
  sim: SimSite;
  intervalMs?: number;
  username?: string;
  password?: string;
  /** Reuse this data dir (a prefilled spool); default a fresh temp dir. */
  dataDir?: string;
  extra?: Obj;
}

export interface AgentHandle {
  proc: Proc;
  site: string;
  host: string;
  dataDir: string;
  spoolPath: string;
  configFile: string;
  /** boot_ids of every run so far (from the `Agent started` lines). */
  bootIds(): string[];
  /** Waits for `Connected to the MQTT broker` in the current run, after `afterLine` lines. */
  connected(timeoutMs?: number, afterLine?: number): Promise<void>;
}

/** Starts an agent process polling `sim`, waits for its `Agent started` line. */
export async function startAgent(options: AgentOptions): Promise<AgentHandle> {
  requireBuilt(AGENT_CLI);
  const dir = tempDir(`agent-${options.host}`);
  const dataDir = options.dataDir ?? join(dir, 'data');
  const config = merge(
    {
      site: options.site,
      host: options.host,
      interval_ms: options.intervalMs ?? 1000,
      data_dir: dataDir,
      broker: {
        url: options.brokerUrl,
        username: options.username ?? '',
        password: options.password ?? '',
        // Roomy: on a loaded 2-core machine a busy collector answers CONNECT late.
        keepalive_s: 15,
        connect_timeout_ms: 10_000,
        reconnect_min_ms: 100,
        reconnect_max_ms: 1000,
      },
      // Fast replay so a long outage drains within the test's time.
      replay: { rate_per_s: 300, max_inflight: 100, ack_timeout_ms: 10_000 },
      poll: { rig_timeout_ms: 900, probe_timeout_ms: 300, probe_attempts: 1 },
      log: { level: 'info' },
      rigs: options.sim.rigTargets(),
      probes: options.sim.probeTargets(),
    },
    options.extra,
  );
  const configFile = join(dir, 'agent.yaml');
  writeYaml(configFile, config);
  const proc = new Proc({
    name: `agent ${options.site}/${options.host}`,
    script: AGENT_CLI,
    args: ['run', '--config', configFile],
  });
  proc.start();
  await proc.waitForLog((l) => l.msg === 'Agent started', 'agent start');
  return {
    proc,
    site: options.site,
    host: options.host,
    dataDir,
    spoolPath: join(dataDir, 'spool.sqlite'),
    configFile,
    bootIds: () => proc.find((l) => l.msg === 'Agent started').map((l) => String(l.boot_id)),
    connected: async (timeoutMs = 20_000, afterLine = 0) => {
      const run = proc.runs;
      await waitFor(
        () => proc.lines.slice(afterLine).some((l) => l.run === run && l.msg === 'Connected to the MQTT broker'),
        `${proc.options.name} to connect`,
        timeoutMs,
      );
    },
  };
}

/** Reads (boot_id, seq, ts) of every row of a spool file, read-only; [] when absent or busy. */
export function readSpool(spoolPath: string): { bootId: string; seq: number; ts: number }[] {
  if (!existsSync(spoolPath)) return [];
  let db: Database.Database | undefined;
  try {
    db = new Database(spoolPath, { readonly: true, fileMustExist: true });
    db.pragma('busy_timeout = 2000');
    return db.prepare('SELECT boot_id AS bootId, seq, ts FROM spool').all() as {
      bootId: string;
      seq: number;
      ts: number;
    }[];
  } catch {
    return [];
  } finally {
    db?.close();
  }
}

/**
 * Every (boot_id, seq) ever seen in the agents' spools: the producer's truth, sampled in the
 * background (the spool commits before publishing, so most reports are seen before they are acked).
 */
export class SpoolLedger {
  /** `site/host` → set of `boot_id/seq`. */
  readonly seen = new Map<string, Set<string>>();
  private timer: NodeJS.Timeout | null = null;
  private readonly agents: AgentHandle[] = [];

  track(agent: AgentHandle): void {
    this.agents.push(agent);
  }

  /** Highest rowid read so far per spool file: each sample reads only rows added since. */
  private readonly lastRowid = new Map<string, number>();

  /**
   * Reads the rows added to every tracked spool since the last sample; returns the total rows
   * currently spooled. Incremental on purpose: the sims and proxies share this process, and a full
   * read of a day-long spool several times a second starved them.
   */
  sample(): number {
    let depth = 0;
    for (const a of this.agents) {
      if (!existsSync(a.spoolPath)) continue;
      let db: Database.Database | undefined;
      try {
        db = new Database(a.spoolPath, { readonly: true, fileMustExist: true });
        db.pragma('busy_timeout = 2000');
        const from = this.lastRowid.get(a.spoolPath) ?? 0;
        const rows = db
          .prepare('SELECT rowid AS id, boot_id AS bootId, seq FROM spool WHERE rowid > ? ORDER BY rowid')
          .all(from) as { id: number; bootId: string; seq: number }[];
        depth += (db.prepare('SELECT count(*) AS n FROM spool').get() as { n: number }).n;
        const key = `${a.site}/${a.host}`;
        let set = this.seen.get(key);
        if (!set) {
          set = new Set();
          this.seen.set(key, set);
        }
        for (const r of rows) set.add(`${r.bootId}/${r.seq}`);
        // Never move backwards: after deletes SQLite may hand out a rowid at or below the old maximum,
        // which this sample then misses; dense seqs (see tally) still account for such a row.
        const last = rows[rows.length - 1];
        if (last) this.lastRowid.set(a.spoolPath, Math.max(from, last.id));
      } catch {
        // a spool mid-recovery or on a full disk: the next sample reads it
      } finally {
        db?.close();
      }
    }
    return depth;
  }

  start(intervalMs = 1000): void {
    this.timer ??= setInterval(() => this.sample(), intervalMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}

export interface StoreView {
  /** `site/host` → set of `boot_id/seq` stored. */
  reports: Map<string, Set<string>>;
  reportCount: number;
  /** Rows beyond the first for any (host, boot_id, seq). */
  duplicateReports: number;
  /** Rows beyond the first for any (rig, ts). */
  duplicateSamples: number;
  /** Reports whose stored sample count differs from their rig_count. */
  incompleteReports: number;
}

/** Opens the collector's database read-only and lists what is stored. */
export function readStore(dbPath: string): StoreView {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    db.pragma('busy_timeout = 5000');
    const rows = db
      .prepare(
        `SELECT s.name AS site, h.name AS host, r.boot_id AS bootId, r.seq AS seq
         FROM reports r JOIN hosts h ON h.id = r.host_id JOIN sites s ON s.id = h.site_id`,
      )
      .all() as { site: string; host: string; bootId: string; seq: number }[];
    const reports = new Map<string, Set<string>>();
    let duplicateReports = 0;
    for (const r of rows) {
      const key = `${r.site}/${r.host}`;
      let set = reports.get(key);
      if (!set) {
        set = new Set();
        reports.set(key, set);
      }
      const id = `${r.bootId}/${r.seq}`;
      if (set.has(id)) duplicateReports++;
      set.add(id);
    }
    const dupSamples = db
      .prepare(
        'SELECT coalesce(sum(n - 1), 0) AS d FROM (SELECT count(*) AS n FROM samples GROUP BY rig_id, ts HAVING n > 1)',
      )
      .get() as { d: number };
    const incomplete = db
      .prepare(
        `SELECT count(*) AS n FROM reports r
         WHERE r.rig_count != (SELECT count(*) FROM samples s WHERE s.report_id = r.id)`,
      )
      .get() as { n: number };
    return {
      reports,
      reportCount: rows.length,
      duplicateReports,
      duplicateSamples: dupSamples.d,
      incompleteReports: incomplete.n,
    };
  } finally {
    db.close();
  }
}

/** The delivery verdict for a set of hosts. */
export interface Tally {
  produced: number;
  stored: number;
  lost: number;
  duplicates: number;
  /** Up to 20 lost keys, for the failure message. */
  lostKeys: string[];
  /** Of the lost ones, how many are still in an agent's spool (undelivered, not gone). */
  stillSpooled?: number;
}

/**
 * Compares the producers' truth with the store for `hosts` (`site/host`): produced = every
 * spooled key plus every seq below the highest seen per boot; lost = produced and not stored.
 */
export function tally(produced: Map<string, Set<string>>, store: StoreView, hosts: string[]): Tally {
  const t: Tally = { produced: 0, stored: 0, lost: 0, duplicates: 0, lostKeys: [] };
  for (const host of hosts) {
    const stored = store.reports.get(host) ?? new Set<string>();
    const maxSeq = new Map<string, number>();
    for (const key of [...(produced.get(host) ?? []), ...stored]) {
      const slash = key.lastIndexOf('/');
      const boot = key.slice(0, slash);
      const seq = Number(key.slice(slash + 1));
      maxSeq.set(boot, Math.max(maxSeq.get(boot) ?? -1, seq));
    }
    for (const [boot, max] of maxSeq) {
      for (let seq = 0; seq <= max; seq++) {
        t.produced++;
        const key = `${boot}/${seq}`;
        if (stored.has(key)) t.stored++;
        else {
          t.lost++;
          if (t.lostKeys.length < 20) t.lostKeys.push(`${host}/${key}`);
        }
      }
    }
  }
  t.duplicates = store.duplicateReports + store.duplicateSamples + store.incompleteReports;
  return t;
}

export interface StackOptions {
  name: string;
  agents?: number;
  rigsPerAgent?: number;
  intervalMs?: number;
  site?: string;
  collector?: CollectorOptions;
  agentExtra?: Obj;
  /** Seed of the sim sites and proxies. */
  seed?: number;
}

/** Collector + N proxied agents over N simulated farms, with a running spool ledger. */
export class Stack {
  readonly options: StackOptions;
  collector!: CollectorHandle;
  readonly agents: AgentHandle[] = [];
  readonly proxies: FaultProxy[] = [];
  readonly sims: SimSite[] = [];
  readonly ledger = new SpoolLedger();

  constructor(options: StackOptions) {
    this.options = options;
  }

  get site(): string {
    return this.options.site ?? this.options.name;
  }

  hosts(): string[] {
    return this.agents.map((a) => `${a.site}/${a.host}`);
  }

  async start(): Promise<this> {
    this.collector = await startCollector({ name: this.options.name, ...this.options.collector });
    const n = this.options.agents ?? 1;
    for (let i = 0; i < n; i++) await this.addAgent();
    this.ledger.start();
    return this;
  }

  /** Adds one proxied agent with its own sim farm; `dataDir` reuses a prefilled spool. */
  async addAgent(dataDir?: string): Promise<AgentHandle> {
    const i = this.agents.length;
    const seed = (this.options.seed ?? 1) * 100 + i;
    const sim = createSimSite({ rigs: this.options.rigsPerAgent ?? 3, seed });
    await sim.start();
    this.sims.push(sim);
    const proxy = new FaultProxy({ targetPort: this.mqttTargetPort(), seed });
    await proxy.start();
    this.proxies.push(proxy);
    const agent = await startAgent({
      site: this.site,
      host: `host-${i + 1}`,
      brokerUrl: proxy.url,
      sim,
      ...(this.options.intervalMs !== undefined ? { intervalMs: this.options.intervalMs } : {}),
      ...(dataDir ? { dataDir } : {}),
      ...(this.options.agentExtra ? { extra: this.options.agentExtra } : {}),
    });
    this.agents.push(agent);
    this.ledger.track(agent);
    return agent;
  }

  private mqttTargetPort(): number {
    const ext = this.options.collector?.external?.url;
    if (ext) return Number(new URL(ext).port);
    return this.collector.mqttPort;
  }

  /** Reports stored now for this stack's hosts. */
  storedCount(): number {
    let db: Database.Database | undefined;
    try {
      db = new Database(this.collector.dbPath, { readonly: true, fileMustExist: true });
      const row = db
        .prepare(
          `SELECT count(*) AS n FROM reports r JOIN hosts h ON h.id = r.host_id JOIN sites s ON s.id = h.site_id
           WHERE s.name = ?`,
        )
        .get(this.site) as { n: number };
      return row.n;
    } catch {
      return 0;
    } finally {
      db?.close();
    }
  }

  /**
   * Waits until every spool is empty and everything produced is stored (bounded); returns the
   * final tally either way, so the caller's assertion shows what was lost.
   */
  async drained(timeoutMs: number): Promise<Tally> {
    const deadline = Date.now() + timeoutMs;
    // Jittered: agents report every second too, and a fixed 1 s poll can lock onto the phase of the
    // ~50 ms between a report's spooling and its ack and see one in flight every time (a failed
    // run: no drained sample in 90 s, though every report reached the collector within 30 ms).
    const pause = () => new Promise((r) => setTimeout(r, 500 + Math.random() * 1000));
    let t: Tally;
    for (;;) {
      const depth = this.ledger.sample();
      if (depth > 0 && Date.now() < deadline) {
        await pause();
        continue;
      }
      let view: StoreView;
      try {
        view = readStore(this.collector.dbPath);
      } catch (err) {
        // A database mid-recovery (after kill -9) or on a full disk may refuse a reader briefly.
        if (Date.now() >= deadline) throw err;
        await new Promise((r) => setTimeout(r, 250));
        continue;
      }
      t = tally(this.ledger.seen, view, this.hosts());
      if (depth === 0 && t.lost === 0) return t;
      if (Date.now() >= deadline) {
        const spooled = new Set(
          this.agents.flatMap((a) => readSpool(a.spoolPath).map((r) => `${a.site}/${a.host}/${r.bootId}/${r.seq}`)),
        );
        t.stillSpooled = t.lostKeys.filter((k) => spooled.has(k)).length;
        return t;
      }
      await pause();
    }
  }

  /**
   * Keeps the evidence of a failed case: the collector's database and every process's log lines,
   * copied to /tmp/hw-fault-evidence/<name>/ (outside the temp dirs that cleanup removes).
   */
  preserve(): string {
    const out = join('/tmp/hw-fault-evidence', `${this.options.name}-${Date.now()}`);
    mkdirSync(out, { recursive: true });
    try {
      const db = new Database(this.collector.dbPath, { readonly: true });
      db.exec(`VACUUM INTO '${join(out, 'collector.db').replace(/'/g, "''")}'`);
      db.close();
    } catch (err) {
      writeFileSync(join(out, 'collector.db.error'), String(err));
    }
    const dump = (file: string, lines: unknown[]) =>
      writeFileSync(join(out, file), lines.map((l) => JSON.stringify(l)).join('\n'));
    dump('collector.log', this.collector.proc.lines);
    for (const a of this.agents) dump(`agent-${a.host}.log`, a.proc.lines);
    dump(
      'ledger.json',
      [...this.ledger.seen].map(([k, v]) => ({ host: k, seen: [...v] })),
    );
    return out;
  }

  /** Every log line of every agent with a level of warn or worse (for failure messages). */
  agentProblems(): LogLine[] {
    return this.agents.flatMap((a) => a.proc.find((l) => l.level === 'error' || l.level === 'fatal'));
  }

  async stop(): Promise<void> {
    this.ledger.stop();
    await Promise.all(this.agents.map((a) => a.proc.stop()));
    await this.collector?.proc.stop();
    await Promise.all(this.proxies.map((p) => p.stop()));
    await Promise.all(this.sims.map((s) => s.stop()));
  }
}
