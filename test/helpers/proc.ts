/**
 * Built hashwatch programs as child processes for cross-process tests: spawn `node <dist>/cli.js`
 * with a generated YAML config in a temp dir, capture its pino JSON lines, wait for a line or a
 * port, SIGTERM/SIGKILL, restart with the same data dir. Every process and temp dir is registered
 * so `cleanupAll()` (afterEach/afterAll) leaves nothing running, even when a test fails midway.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';

export const AGENT_CLI = fileURLToPath(new URL('../../agent/dist/cli.js', import.meta.url));
export const COLLECTOR_CLI = fileURLToPath(new URL('../../collector/dist/cli.js', import.meta.url));

/** One parsed pino line (plus the raw text). */
export interface LogLine {
  level?: string | number;
  msg?: string;
  [key: string]: unknown;
}

const live = new Set<Proc>();
const dirs = new Set<string>();

/**
 * The node flags a program's shebang passes (`#!/usr/bin/env -S node --flag …`), so that tests and
 * benchmarks run it with what its bin gets.
 */
export function shebangNodeFlags(file: string): string[] {
  const first = readFileSync(file, 'utf8').split('\n', 1)[0] ?? '';
  const m = /^#!\S*env(?:\s+-S)?\s+node((?:\s+\S+)*)\s*$/.exec(first);
  if (!m) throw new Error(`${file}: the first line is not "#!/usr/bin/env [-S] node …": ${JSON.stringify(first)}`);
  return (m[1] ?? '').trim().split(/\s+/).filter(Boolean);
}

/** Throws (never skips) when a program has not been built. */
export function requireBuilt(file: string): void {
  if (!existsSync(file)) throw new Error(`${file} is missing: run \`npx tsc -b\` before the e2e tests`);
}

/** A temp dir removed by `cleanupAll()`. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `hw-${prefix}-`));
  dirs.add(dir);
  return dir;
}

/** Writes `config` as YAML (keys as given: callers use snake_case). */
export function writeYaml(file: string, config: unknown): void {
  writeFileSync(file, stringify(config, { lineWidth: 0 }), { mode: 0o600 });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `cond` every `stepMs` until it holds; throws naming `what` after `timeoutMs`. */
export async function waitFor(
  cond: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs: number,
  stepMs = 500,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() >= deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(stepMs);
  }
}

/** A free TCP port on 127.0.0.1 (bound then released: a small race, acceptable in tests). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const addr = server.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** True when something accepts TCP connections on 127.0.0.1:port. */
export function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export interface ProcOptions {
  /** Label in error messages (`collector`, `agent-2`). */
  name: string;
  /** The built script (AGENT_CLI / COLLECTOR_CLI). */
  script: string;
  /** Arguments after the script. */
  args: string[];
  env?: Record<string, string>;
  cwd?: string;
}

/** Exit of one run: code or signal. */
export interface ProcExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * One program, possibly across several runs (restart keeps the same args, so the same config
 * and data dir). Logs of every run accumulate in `lines`, each tagged with its run number.
 */
export class Proc {
  readonly options: ProcOptions;
  readonly lines: (LogLine & { run: number })[] = [];
  private child: ChildProcess | null = null;
  private exitP: Promise<ProcExit> | null = null;
  private stderrText = '';
  private run = 0;
  private lastExit: ProcExit | null = null;
  private listeners: Array<() => void> = [];

  constructor(options: ProcOptions) {
    this.options = options;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get alive(): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  get runs(): number {
    return this.run;
  }

  get exit(): ProcExit | null {
    return this.lastExit;
  }

  stderr(): string {
    return this.stderrText;
  }

  /** Spawns the program (again). Resolves at once; use `waitForLog` for readiness. */
  start(): void {
    if (this.alive) throw new Error(`${this.options.name} is already running`);
    requireBuilt(this.options.script);
    this.run++;
    const run = this.run;
    this.lastExit = null;
    const args = [...shebangNodeFlags(this.options.script), this.options.script, ...this.options.args];
    const child = spawn(process.execPath, args, {
      cwd: this.options.cwd,
      env: { ...process.env, ...this.options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    live.add(this);
    let buffered = '';
    child.stdout?.on('data', (d: Buffer) => {
      buffered += d.toString();
      const parts = buffered.split('\n');
      buffered = parts.pop() ?? '';
      for (const text of parts) {
        if (text.trim() === '') continue;
        try {
          this.lines.push({ ...(JSON.parse(text) as LogLine), run });
        } catch {
          this.lines.push({ msg: text, raw: true, run });
        }
      }
      for (const l of this.listeners) l();
    });
    child.stderr?.on('data', (d: Buffer) => {
      // Bounded: a crash loop must not fill the test's memory.
      if (this.stderrText.length < 64 * 1024) this.stderrText += d.toString();
    });
    this.exitP = new Promise<ProcExit>((resolve) => {
      child.once('exit', (code, signal) => {
        this.lastExit = { code, signal };
        live.delete(this);
        for (const l of this.listeners) l();
        resolve({ code, signal });
      });
    });
  }

  /** Log lines matching `pred`, optionally from one run only. */
  find(pred: (l: LogLine) => boolean, run?: number): LogLine[] {
    return this.lines.filter((l) => (run === undefined || l.run === run) && pred(l));
  }

  /** Waits for a log line of the current run matching `pred`; fails early if the process exits. */
  async waitForLog(pred: (l: LogLine) => boolean, what: string, timeoutMs = 20_000): Promise<LogLine> {
    const run = this.run;
    let found: LogLine | undefined;
    const deadline = Date.now() + timeoutMs;
    await waitFor(
      () => {
        found = this.lines.find((l) => l.run === run && pred(l));
        if (found) return true;
        if (Date.now() >= deadline - 60) {
          throw new Error(
            `${this.options.name}: no ${what} within ${timeoutMs} ms; alive=${this.alive}; stderr: ${this.stderrText.slice(-1000)}; last log: ${JSON.stringify(this.lines.slice(-5))}`,
          );
        }
        if (!this.alive) {
          throw new Error(
            `${this.options.name} exited (${JSON.stringify(this.lastExit)}) before ${what}; stderr: ${this.stderrText.slice(-2000)}; last log: ${JSON.stringify(this.lines.slice(-5))}`,
          );
        }
        return false;
      },
      `${this.options.name}: ${what}`,
      timeoutMs,
      50,
    );
    return found as LogLine;
  }

  /** Sends a signal and waits for the exit (SIGKILL after `timeoutMs`). */
  async signal(sig: NodeJS.Signals, timeoutMs = 10_000): Promise<ProcExit> {
    const child = this.child;
    const exitP = this.exitP;
    if (!child || !exitP || !this.alive) return this.lastExit ?? { code: null, signal: null };
    child.kill(sig);
    let timer: NodeJS.Timeout | undefined;
    const forced = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        child.kill('SIGKILL');
        resolve();
      }, timeoutMs);
    });
    await Promise.race([exitP, forced]);
    clearTimeout(timer);
    return exitP;
  }

  /** Clean stop (SIGTERM; SIGKILL if it does not exit in time). */
  stop(timeoutMs = 10_000): Promise<ProcExit> {
    return this.signal('SIGTERM', timeoutMs);
  }

  /** kill -9. */
  kill(): Promise<ProcExit> {
    return this.signal('SIGKILL', 5000);
  }

  /** Resident set size in KiB (Linux /proc), or undefined when not running. */
  rssKb(): number | undefined {
    if (!this.alive || this.pid === undefined) return undefined;
    try {
      const status = readFileSync(`/proc/${this.pid}/status`, 'utf8');
      const m = /VmRSS:\s+(\d+)\s+kB/.exec(status);
      return m ? Number(m[1]) : undefined;
    } catch {
      return undefined;
    }
  }
}

/** SIGKILLs every process still running and removes every temp dir. Call from afterAll/afterEach. */
export async function cleanupAll(): Promise<void> {
  await Promise.all([...live].map((p) => p.kill()));
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  dirs.clear();
}
