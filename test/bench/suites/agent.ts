/**
 * One real agent process (`node agent/dist/cli.js run`) polling N simulated rigs (real cgminer
 * servers on 127.0.0.1, from agent/src/sim) plus the simulated uplink probes, publishing to a real
 * collector: its CPU and RSS over a window, and its CPU per poll round.
 *
 * HASHWATCH_BENCH_AGENT_CLI=<path to another build's cli.js> measures that build instead, so a
 * change can be compared with the code before it under the same load (the machine is shared).
 * HASHWATCH_BENCH_AGENT_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/p" passes node flags to the agent.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { createSimSite } from '../../../agent/src/sim/index.js';
import { AGENT_V8_FLAGS } from '../../../agent/src/v8-flags.js';
import { AGENT_CLI, CollectorProc, requireBuild } from '../collector-proc.js';
import { sleep, waitFor, watchProcess } from '../proc.js';

export interface AgentBenchOptions {
  rigs: number;
  intervalMs: number;
  measureMs: number;
}

export interface AgentResult extends AgentBenchOptions {
  cpuPercent: number;
  rssMaxBytes: number;
  rssLastBytes: number;
  rounds: number;
  cpuMsPerRound: number;
  reportsStored: number;
  /** CPU of every run, when several were made (run.ts reports the median run). */
  runsCpuPercent?: number[];
  /** The reader's lenient parse on the real firmware fixtures (absent in older results). */
  replyParse?: ReplyParseRow[];
}

export interface ReplyParseRow {
  /** Fixture path under agent/test/fixtures. */
  fixture: string;
  bytes: number;
  /** The reply needs the repair pass (real firmware quirks), not just JSON.parse. */
  repaired: boolean;
  /** parseLenient, as the agent runs it. */
  lenientUs: number;
  /** Baseline: JSON.parse of the same reply re-serialised as valid JSON. */
  jsonParseUs: number;
}

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '../../../agent/test/fixtures');

/**
 * µs per reply of the cgminer reader's lenient parse on every real-firmware cgminer fixture, in a
 * child process with the agent program's V8 flags (no TurboFan: the cost differs several-fold).
 */
export function benchReplyParse(msPerFixture: number): ReplyParseRow[] {
  const files = readdirSync(FIXTURES, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.json') && !f.startsWith('bitaxe'))
    .sort();
  const parser = new URL('../../../agent/dist/readers/cgminer-json.js', import.meta.url).href;
  const script = `
    import { readFileSync } from 'node:fs';
    import { parseLenient } from ${JSON.stringify(parser)};
    const time = (f) => {
      let n = 0;
      const t0 = performance.now();
      while (performance.now() - t0 < ${msPerFixture}) { f(); n++; }
      return ((performance.now() - t0) * 1000) / n;
    };
    const rows = [];
    for (const fixture of ${JSON.stringify(files)}) {
      const text = readFileSync(${JSON.stringify(FIXTURES)} + '/' + fixture, 'latin1');
      const first = parseLenient(text);
      if (!first.ok) throw new Error(fixture + ': ' + first.message);
      const valid = JSON.stringify(first.value);
      rows.push({ fixture, bytes: text.length, repaired: first.repaired,
        lenientUs: time(() => parseLenient(text)), jsonParseUs: time(() => JSON.parse(valid)) });
    }
    process.stdout.write(JSON.stringify(rows));`;
  const flags = AGENT_V8_FLAGS.map((f) => f.flag);
  const out = execFileSync(process.execPath, [...flags, '--input-type=module', '-e', script], { encoding: 'utf8' });
  return JSON.parse(out) as ReplyParseRow[];
}

export async function benchAgent(o: AgentBenchOptions, log: (s: string) => void): Promise<AgentResult> {
  requireBuild();
  const site = createSimSite({ rigs: o.rigs, seed: 5 });
  const collector = new CollectorProc();
  const dir = mkdtempSync(join(tmpdir(), 'hw-bench-agent-'));
  let proc: ChildProcess | undefined;
  let out = '';
  try {
    await site.start();
    await collector.start();
    const file = join(dir, 'agent.yaml');
    writeFileSync(
      file,
      stringify({
        site: 'bench',
        host: 'agent-1',
        interval_ms: o.intervalMs,
        data_dir: join(dir, 'data'),
        broker: { url: collector.mqttUrl },
        log: { level: 'warn' },
        rigs: site.rigTargets(),
        probes: site.probeTargets(),
      }),
    );
    const cli = process.env['HASHWATCH_BENCH_AGENT_CLI'] || AGENT_CLI;
    const nodeArgs = (process.env['HASHWATCH_BENCH_AGENT_NODE_ARGS'] ?? '').split(' ').filter(Boolean);
    proc = spawn(process.execPath, [...nodeArgs, cli, '--config', file, 'run'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const p = proc;
    const keep = (d: Buffer) => {
      out = (out + d.toString()).slice(-8000);
    };
    p.stdout?.on('data', keep);
    p.stderr?.on('data', keep);
    const reports = async () => {
      const res = await fetch(`http://127.0.0.1:${collector.httpPort}/api/v1/rigs?site=bench`);
      if (res.status !== 200) return 0;
      const body = (await res.json()) as { rigs?: unknown[] };
      return body.rigs?.length ?? 0;
    };
    // Warm-up: the first round is done and stored (the JIT and the connections are warm).
    await waitFor(
      async () => {
        if (p.exitCode !== null) throw new Error(`agent exited with ${p.exitCode}:\n${out}`);
        return (await reports()) >= o.rigs;
      },
      60_000,
      'the first report of the agent to be stored',
      250,
    );
    // Start the window just after a round, so it holds whole rounds.
    await sleep(1000);
    const watch = watchProcess(p.pid as number, 1000);
    await sleep(o.measureMs);
    const w = watch.stop();
    const rounds = Math.max(1, Math.round((w.windowS * 1000) / o.intervalMs));
    const result: AgentResult = {
      ...o,
      cpuPercent: w.cpuPercent,
      rssMaxBytes: w.rssMaxBytes,
      rssLastBytes: w.rssLastBytes,
      rounds,
      cpuMsPerRound: (w.cpuS * 1000) / rounds,
      reportsStored: await reports(),
    };
    log(
      `agent: ${o.rigs} rigs, cpu ${result.cpuPercent.toFixed(2)} %, rss ${(result.rssMaxBytes / 1e6).toFixed(0)} MB, ${result.cpuMsPerRound.toFixed(0)} ms CPU per round`,
    );
    return result;
  } finally {
    if (proc && proc.exitCode === null) {
      const exited = new Promise<void>((r) => proc?.once('exit', () => r()));
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc?.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    }
    await collector.dispose();
    await site.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
