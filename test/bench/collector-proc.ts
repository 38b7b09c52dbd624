/**
 * A real collector process for the benchmarks (`collector/dist/cli.js run` with its shebang's node
 * flags), with its own
 * temp data dir and SQLite file, on free loopback ports, either with its embedded broker
 * (anonymous, loopback only) or as a client of an external broker. Needs `npx tsc -b` first.
 *
 * HASHWATCH_BENCH_COLLECTOR_CLI=<path to another build's cli.js> runs that build instead, so a
 * change can be compared with the code before it in the same session (the machine is shared).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { stateFilePath } from '../../collector/src/diagnosis/state-file.js';
import { shebangNodeFlags } from '../helpers/proc.js';
import { freePort, waitFor } from './proc.js';

export const COLLECTOR_CLI =
  process.env['HASHWATCH_BENCH_COLLECTOR_CLI'] ||
  fileURLToPath(new URL('../../collector/dist/cli.js', import.meta.url));
export const AGENT_CLI = fileURLToPath(new URL('../../agent/dist/cli.js', import.meta.url));

export function requireBuild(): void {
  for (const f of [COLLECTOR_CLI, AGENT_CLI]) {
    if (!existsSync(f)) throw new Error(`${f} is missing: run \`npx tsc -b\` (npm run bench builds first)`);
  }
}

type Tree = Record<string, unknown>;
const isTree = (v: unknown): v is Tree => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Deep-merges `over` into `into` (objects merge, everything else replaces). */
function merge(into: Tree, over: Tree): Tree {
  for (const [k, v] of Object.entries(over)) {
    const cur = into[k];
    if (isTree(cur) && isTree(v)) merge(cur, v);
    else into[k] = v;
  }
  return into;
}

export interface CollectorProcOptions {
  /** External broker URL; absent = embedded aedes on a free port. */
  externalUrl?: string;
  /** Extra config merged (deeply) over the bench defaults below. */
  config?: Record<string, Record<string, unknown>>;
  /** Extra node flags, e.g. `--cpu-prof` to profile the collector under load. */
  nodeArgs?: string[];
}

export class CollectorProc {
  readonly dir: string;
  readonly dbPath: string;
  mqttUrl = '';
  httpPort = 0;
  private proc: ChildProcess | undefined;
  private out = '';
  private readonly options: CollectorProcOptions;

  constructor(options: CollectorProcOptions = {}) {
    this.options = options;
    this.dir = mkdtempSync(join(tmpdir(), 'hw-bench-collector-'));
    this.dbPath = join(this.dir, 'hashwatch.db');
  }

  get pid(): number {
    if (!this.proc?.pid) throw new Error('collector is not running');
    return this.proc.pid;
  }

  /** The last output of the process (for error messages). */
  output(): string {
    return this.out.slice(-4000);
  }

  async start(): Promise<void> {
    requireBuild();
    this.httpPort = await freePort();
    const mqttPort = await freePort();
    const external = this.options.externalUrl;
    const base: Record<string, Record<string, unknown>> = {
      log: { level: 'warn' },
      store: { path: this.dbPath },
      http: { host: '127.0.0.1', port: this.httpPort },
      broker: external
        ? { mode: 'external', external: { url: external, client_id: 'bench-collector', clean_session: true } }
        : {
            mode: 'embedded',
            embedded: {
              host: '127.0.0.1',
              port: mqttPort,
              allow_anonymous: true,
              watch_credentials: false,
              max_connections: 100_000,
              max_connections_per_address: 100_000,
              max_connects_per_address_per_minute: 100_000,
            },
          },
    };
    merge(base, this.options.config ?? {});
    const file = join(this.dir, 'collector.yaml');
    writeFileSync(file, stringify({ collector_id: 'bench', data_dir: this.dir, ...base }));
    this.mqttUrl = external ?? `mqtt://127.0.0.1:${mqttPort}`;
    // As its bin runs it: the shebang's node flags first, then the bench's own.
    const nodeArgs = [...shebangNodeFlags(COLLECTOR_CLI), ...(this.options.nodeArgs ?? [])];
    const proc = spawn(process.execPath, [...nodeArgs, COLLECTOR_CLI, 'run', '--config', file], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc = proc;
    const keep = (d: Buffer) => {
      this.out = (this.out + d.toString()).slice(-20_000);
    };
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    await waitFor(
      async () => {
        if (proc.exitCode !== null) throw new Error(`collector exited with ${proc.exitCode}:\n${this.output()}`);
        try {
          const res = await fetch(`http://127.0.0.1:${this.httpPort}/readyz`);
          return res.status === 200;
        } catch {
          return false;
        }
      },
      30_000,
      'the collector to be ready',
      100,
    );
  }

  /** The database, its WAL and the diagnosis memory's file beside it: what the collector keeps on disk. */
  dbBytes(): number {
    let n = 0;
    for (const f of [this.dbPath, `${this.dbPath}-wal`, stateFilePath(this.dbPath)])
      if (existsSync(f)) n += statSync(f).size;
    return n;
  }

  /** SIGTERM (clean stop: flush, ack, checkpoint, close), SIGKILL after 30 s. */
  async stop(): Promise<void> {
    const proc = this.proc;
    this.proc = undefined;
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise<void>((r) => proc.once('exit', () => r()));
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(timer);
  }

  /** Stops the process and deletes its files. */
  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
