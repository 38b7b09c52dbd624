/**
 * The built agent program (`node agent/dist/cli.js`) as a child process, for tests that kill it
 * or count its file descriptors. Fails loudly when the build is missing: run `npx tsc -b` first.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const CLI_PATH = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

export class AgentProcess {
  readonly output: string[] = [];
  private child: ChildProcess | null = null;
  private exited: Promise<number | null> | null = null;

  constructor(private readonly configPath: string) {}

  start(): void {
    if (!existsSync(CLI_PATH)) throw new Error(`${CLI_PATH} is missing: run \`npx tsc -b\` before this test`);
    const child = spawn(process.execPath, [CLI_PATH, 'run', '--config', this.configPath], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, HASHWATCH_AGENT_LOG__LEVEL: 'debug' },
    });
    this.child = child;
    let partial = '';
    const onData = (chunk: Buffer) => {
      const text = partial + chunk.toString();
      const lines = text.split('\n');
      partial = lines.pop() ?? '';
      this.output.push(...lines);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (c: Buffer) => this.output.push(`stderr: ${c.toString()}`));
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }

  get pid(): number {
    if (!this.child?.pid) throw new Error('agent process not started');
    return this.child.pid;
  }

  /** Open file descriptors of the child (Linux /proc). */
  fdCount(): number {
    return readdirSync(`/proc/${this.pid}/fd`).length;
  }

  /** Log lines (parsed pino JSON) whose msg contains `text`. */
  logs(text: string): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    for (const line of this.output) {
      try {
        const entry = JSON.parse(line) as Record<string, unknown>;
        if (typeof entry['msg'] === 'string' && entry['msg'].includes(text)) out.push(entry);
      } catch {
        // not a log line
      }
    }
    return out;
  }

  /** Sends `signal` and waits (bounded) for the exit code. */
  async kill(signal: NodeJS.Signals, timeoutMs = 10_000): Promise<number | null> {
    const child = this.child;
    if (!child || !this.exited) return null;
    child.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([
      this.exited,
      new Promise<'timeout'>((r) => {
        timer = setTimeout(() => r('timeout'), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (code === 'timeout') {
      child.kill('SIGKILL');
      throw new Error(`agent did not exit within ${timeoutMs} ms after ${signal}\n${this.output.join('\n')}`);
    }
    this.child = null;
    return code;
  }
}
