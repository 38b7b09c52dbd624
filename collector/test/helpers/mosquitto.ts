/**
 * A real mosquitto for tests: free loopback port, password file made by `mosquitto_passwd`, an ACL
 * file, started from /usr/sbin/mosquitto and stopped in teardown. Fails loudly when mosquitto is
 * missing (tests must not silently skip). Other suites may reuse it.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const MOSQUITTO_BIN = '/usr/sbin/mosquitto';
export const MOSQUITTO_PASSWD_BIN = '/usr/bin/mosquitto_passwd';

export interface MosquittoOptions {
  /** Users for the password file; none = anonymous access. */
  users?: { username: string; password: string }[];
  /** Content of the ACL file (mosquitto `acl_file` syntax); none = no ACL. */
  acl?: string;
  /** Extra mosquitto.conf lines. */
  extraConfig?: string[];
}

export interface Mosquitto {
  port: number;
  url: string;
  dir: string;
  /** stderr/stdout of the broker so far (for assertion messages). */
  output(): string;
  /** Stops the process (SIGTERM, then SIGKILL) and starts it again on the same port. */
  restart(): Promise<void>;
  /** Stops the process without removing its files. */
  kill(): Promise<void>;
  /** Stops the process and removes its files. */
  stop(): Promise<void>;
}

/** A free TCP port on 127.0.0.1 (bound and released: a tiny race, acceptable in tests). */
export async function freePort(): Promise<number> {
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

async function waitForPort(port: number, timeoutMs: number, proc: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`mosquitto exited with ${proc.exitCode}:\n${output()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`mosquitto did not listen on 127.0.0.1:${port} within ${timeoutMs} ms:\n${output()}`);
}

function waitExit(proc: ChildProcess, timeoutMs: number): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
    proc.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Starts mosquitto with the given users and ACL on a free loopback port. */
export async function startMosquitto(options: MosquittoOptions = {}): Promise<Mosquitto> {
  for (const bin of [MOSQUITTO_BIN, ...(options.users?.length ? [MOSQUITTO_PASSWD_BIN] : [])]) {
    if (!existsSync(bin)) throw new Error(`${bin} is missing: install the mosquitto package to run these tests`);
  }
  const dir = await mkdtemp(join(tmpdir(), 'hw-mosquitto-'));
  const port = await freePort();
  const lines = [
    `listener ${port} 127.0.0.1`,
    'persistence false',
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    'log_type notice',
    'max_queued_messages 100000',
    'max_inflight_messages 1000',
    // Running as root, mosquitto would switch to user "mosquitto", who cannot read our temp dir.
    ...(process.getuid?.() === 0 ? ['user root'] : []),
  ];
  if (options.users?.length) {
    const pwFile = join(dir, 'passwd');
    await writeFile(pwFile, '', { mode: 0o600 });
    for (const u of options.users) execFileSync(MOSQUITTO_PASSWD_BIN, ['-b', pwFile, u.username, u.password]);
    lines.push('allow_anonymous false', `password_file ${pwFile}`);
  } else {
    lines.push('allow_anonymous true');
  }
  if (options.acl !== undefined) {
    const aclFile = join(dir, 'acl');
    await writeFile(aclFile, options.acl, { mode: 0o600 });
    lines.push(`acl_file ${aclFile}`);
  }
  lines.push(...(options.extraConfig ?? []));
  const confFile = join(dir, 'mosquitto.conf');
  await writeFile(confFile, `${lines.join('\n')}\n`, { mode: 0o600 });

  let out = '';
  let proc: ChildProcess;
  const launch = async () => {
    proc = spawn(MOSQUITTO_BIN, ['-c', confFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    proc.stderr?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    await waitForPort(port, 10_000, proc, () => out);
  };
  const kill = async () => {
    proc.kill('SIGTERM');
    await waitExit(proc, 5_000);
  };
  try {
    await launch();
  } catch (err) {
    await kill().catch(() => {});
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    port,
    url: `mqtt://127.0.0.1:${port}`,
    dir,
    output: () => out,
    restart: async () => {
      await kill();
      await launch();
    },
    kill,
    stop: async () => {
      await kill();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
