/**
 * The collector's node flags: its bin's shebang gives V8 a larger young generation (finding 20 of
 * BENCHMARKS.md), the Docker image and the demo pass the same flags, and a collector started
 * without them says so in its log.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import {
  COLLECTOR_CLI,
  cleanupAll,
  freePort,
  type LogLine,
  requireBuilt,
  shebangNodeFlags,
  tempDir,
  waitFor,
  writeYaml,
} from './helpers/proc.js';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const SOURCE = join(REPO, 'collector/src/cli.ts');
const WARNING = /default young generation/;

const children: ChildProcess[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await cleanupAll();
});

/** Starts `command args…` on a fresh config; resolves with its log lines once it has started. */
async function startedWith(command: string, args: string[]): Promise<{ child: ChildProcess; lines: LogLine[] }> {
  const dir = tempDir('runtime-flags');
  const config = join(dir, 'collector.yaml');
  writeYaml(config, {
    collector_id: 'flags',
    data_dir: dir,
    log: { level: 'info' },
    http: { host: '127.0.0.1', port: await freePort() },
    live: { enabled: false },
    broker: { mode: 'embedded', embedded: { host: '127.0.0.1', port: await freePort(), allow_anonymous: true } },
  });
  const child = spawn(command, [...args, 'run', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const lines: LogLine[] = [];
  let stderr = '';
  let rest = '';
  child.stdout?.on('data', (d: Buffer) => {
    const parts = (rest + d.toString()).split('\n');
    rest = parts.pop() ?? '';
    for (const p of parts) if (p.trim()) lines.push(JSON.parse(p) as LogLine);
  });
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  await waitFor(
    () => {
      if (child.exitCode !== null) throw new Error(`${command} exited with ${child.exitCode}: ${stderr}`);
      return lines.some((l) => l.msg === 'Collector started');
    },
    'the collector to start',
    30_000,
    100,
  );
  return { child, lines };
}

async function stop(child: ChildProcess): Promise<number | null> {
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  return exited;
}

describe('collector node flags', () => {
  it('the bin, the Docker image and the demo start node with the same flags', () => {
    requireBuilt(COLLECTOR_CLI);
    const flags = shebangNodeFlags(SOURCE);
    expect(flags).toContain('--max-semi-space-size=64');
    // tsc keeps the shebang: the built bin is what npm links as `hashwatch-collector`.
    expect(readFileSync(COLLECTOR_CLI, 'utf8').split('\n', 1)[0]).toBe(readFileSync(SOURCE, 'utf8').split('\n', 1)[0]);
    const dockerfile = readFileSync(join(REPO, 'docker/Dockerfile.collector'), 'utf8');
    const entry = /^ENTRYPOINT (\[.*\])$/m.exec(dockerfile)?.[1];
    expect(entry && JSON.parse(entry)).toEqual(['node', ...flags, 'collector/dist/cli.js']);
    const scripts = (
      JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
    ).scripts;
    expect(scripts['demo']).toContain(`node ${flags.join(' ')} demo/dist/demo.js`);
  });

  it('run as an executable, its shebang passes the flags; run by plain node, it warns', async () => {
    requireBuilt(COLLECTOR_CLI);
    // What npm does when it links a bin; the kernel then reads the shebang (`env -S`).
    chmodSync(COLLECTOR_CLI, statSync(COLLECTOR_CLI).mode | 0o111);
    const direct = await startedWith(COLLECTOR_CLI, []);
    expect(direct.lines.filter((l) => WARNING.test(String(l.msg)))).toEqual([]);
    expect(await stop(direct.child)).toBe(0);

    const plain = await startedWith(process.execPath, [COLLECTOR_CLI]);
    const warnings = plain.lines.filter((l) => WARNING.test(String(l.msg)));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ flag: '--max-semi-space-size=64' });
    expect(await stop(plain.child)).toBe(0);
  });
});
