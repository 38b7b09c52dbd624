/** The program's command line as a user meets it (needs `npx tsc -b`). */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_PATH } from './helpers/child.js';

let dir: string;
beforeAll(() => {
  if (!existsSync(CLI_PATH)) throw new Error(`${CLI_PATH} is missing: run \`npx tsc -b\` before this test`);
  dir = mkdtempSync(join(tmpdir(), 'hw-cli-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function cli(args: string[]) {
  // Async child: the check command talks to a server in this process.
  return new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, [CLI_PATH, ...args], { timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ status: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr });
    });
  });
}

describe('hashwatch-agent command line', () => {
  it('prints its version and help', () => {
    const version = spawnSync(process.execPath, [CLI_PATH, '--version'], { encoding: 'utf8' });
    expect(version.status).toBe(0);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    const help = spawnSync(process.execPath, [CLI_PATH, '--help'], { encoding: 'utf8' });
    expect(help.stdout).toContain('--config <file>');
    expect(help.stdout).toContain('check');
  });

  it('exits with 2 and names the key on an invalid config', async () => {
    const path = join(dir, 'bad.yaml');
    writeFileSync(
      path,
      'site: farm-a\nrigs:\n  - {id: r1, api: cgminer, host: a, nominal_hashrate_hs: 1}\n  - {id: r1, api: cgminer, host: b, nominal_hashrate_hs: 1}\n',
    );
    for (const command of ['run', 'check']) {
      const out = await cli([command, '--config', path]);
      expect(out.status).toBe(2);
      expect(out.stderr).toContain('rigs[1].id "r1" repeats rigs[0].id');
    }
    const missing = await cli(['--config', join(dir, 'nope.yaml')]);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain('nope.yaml');
  });

  it('check polls every rig and probe once and prints a table', async () => {
    // A TCP port that accepts (probe ok) and one that refuses (rig unreachable).
    const server = createServer((s) => s.destroy());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const open = (server.address() as { port: number }).port;
    const refused = createServer();
    await new Promise<void>((r) => refused.listen(0, '127.0.0.1', () => r()));
    const closedPort = (refused.address() as { port: number }).port;
    await new Promise((r) => refused.close(r));
    try {
      const path = join(dir, 'check.yaml');
      writeFileSync(
        path,
        [
          'site: farm-a',
          'host: host-1',
          'poll: {rig_timeout_ms: 1000, probe_timeout_ms: 1000, probe_attempts: 1}',
          'rigs:',
          `  - {id: rig-down, api: cgminer, host: 127.0.0.1, port: ${closedPort}, nominal_hashrate_hs: 1e14}`,
          'probes:',
          `  - {target: up-tcp, kind: tcp, role: internet, address: "127.0.0.1:${open}"}`,
          '',
        ].join('\n'),
      );
      const out = await cli(['check', '--config', path]);
      expect(out.stdout).toMatch(/RIG\s+REACHABLE\s+HASHRATE\s+POWER\s+ERROR/);
      expect(out.stdout).toMatch(/rig-down\s+no\s+-\s+-\s+refused/);
      expect(out.stdout).toMatch(/up-tcp\s+yes\s+[\d.]+ ms\s+0 %/);
      expect(out.status).toBe(1); // a rig failed
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});

describe('hashwatch-agent run with metrics.port', () => {
  it('serves its own /metrics while it runs, even with no broker to talk to', async () => {
    const port = await new Promise<number>((resolve) => {
      const srv = createServer().listen(0, '127.0.0.1', () => {
        const p = (srv.address() as { port: number }).port;
        srv.close(() => resolve(p));
      });
    });
    const path = join(dir, 'metrics.yaml');
    writeFileSync(
      path,
      [
        'site: farm-a',
        'host: host-m',
        `data_dir: ${join(dir, 'metrics-data')}`,
        // Nothing listens on port 9 (discard): the agent spools and keeps retrying.
        'broker: {url: "mqtt://127.0.0.1:9", reconnect_max_ms: 1000}',
        `metrics: {port: ${port}}`,
        'log: {level: warn}',
      ].join('\n'),
    );
    const child = execFile(process.execPath, [CLI_PATH, 'run', '--config', path]);
    try {
      let body = '';
      const deadline = Date.now() + 15_000;
      while (Date.now() < deadline) {
        try {
          const res = await fetch(`http://127.0.0.1:${port}/metrics`);
          body = await res.text();
          if (/hashwatch_agent_spool_depth\S* [1-9]/.test(body)) break;
        } catch {
          // not listening yet
        }
        await new Promise((r) => setTimeout(r, 250));
      }
      expect(body).toMatch(/hashwatch_agent_spool_depth\{site="farm-a",host="host-m"\} [1-9]/);
      expect(body).toContain('process_resident_memory_bytes');
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  });
});
