/**
 * A fleet worker process: runs many SimAgents (one MQTT connection each) and answers the
 * orchestrator over IPC. Started by fleet.ts with `fork()`; exits when the parent goes away.
 */
import { ReportTemplate, rigId } from './payload.js';
import type { FaultRecord, FaultSpec, FromWorker, ToWorker, WorkerConfig, WorkerTotals } from './protocol.js';
import { SimAgent } from './sim-agent.js';

let agents: SimAgent[] = [];
let config: WorkerConfig | undefined;
let reportBytes = 0;
const totals = (): WorkerTotals => {
  const t: WorkerTotals = {
    hosts: config?.hosts ?? 0,
    connected: agents.length,
    sent: 0,
    acked: 0,
    ackedSamples: 0,
    inflight: 0,
    rejectedInbound: 0,
    rebirths: 0,
    resendsAsked: 0,
    disconnects: 0,
    reportBytes,
  };
  return t;
};

function send(msg: FromWorker): void {
  process.send?.(msg);
}

async function init(c: WorkerConfig): Promise<void> {
  config = c;
  const pending: SimAgent[] = [];
  for (let i = 0; i < c.hosts; i++) {
    const bootId = `${process.pid.toString(36)}-${(c.firstHost + i).toString(36)}-${Date.now().toString(36)}`;
    const template = new ReportTemplate(c.shape, c.rigsPerHost, bootId.padEnd(8, '0'), c.intervalMs);
    reportBytes = template.bytes;
    pending.push(
      new SimAgent(
        {
          url: c.url,
          site: c.sites > 1 ? `${c.site}${(c.firstHost + i) % c.sites}` : c.site,
          host: `${c.hostPrefix}${c.firstHost + i}`,
          template,
          intervalMs: c.intervalMs,
          mode: c.mode,
          maxInflight: c.maxInflight,
          backdateMs: c.backdateMs,
          protocolVersion: c.protocolVersion,
          ...(c.username ? { username: c.username } : {}),
          ...(c.password ? { password: c.password } : {}),
        },
        bootId.padEnd(8, '0'),
      ),
    );
  }
  for (let i = 0; i < pending.length; i += c.connectConcurrency) {
    const chunk = pending.slice(i, i + c.connectConcurrency);
    await Promise.all(chunk.map((a) => a.connect()));
    agents.push(...chunk);
  }
  send({ type: 'ready', totals: totals() });
}

function stats(): void {
  const t = totals();
  const latenciesMs: number[] = [];
  for (const a of agents) {
    const s = a.takeStats();
    t.sent += s.sent;
    t.acked += s.acked;
    t.ackedSamples += s.ackedSamples;
    t.inflight += a.inflight;
    t.rejectedInbound += s.rejectedInbound;
    t.rebirths += s.rebirths;
    t.resendsAsked += s.resendsAsked;
    t.disconnects += s.disconnects;
    for (const l of s.latenciesMs) latenciesMs.push(l);
  }
  const faults: FaultRecord[] = [];
  for (const a of agents) {
    const f = a.fault;
    if (f?.firstTs === undefined || f.seq === undefined) continue;
    faults.push({ kind: f.kind, site: a.site, host: a.host, rigs: f.rigs, firstTs: f.firstTs, seq: f.seq });
  }
  send({ type: 'stats', totals: t, latenciesMs, faults });
}

/** Swaps the template of the named hosts of this worker (hosts of other workers are ignored). */
function inject(faults: FaultSpec[]): void {
  const c = config;
  if (!c) throw new Error('fault before init');
  for (const spec of faults) {
    const agent = agents.find((a) => a.host === spec.host);
    if (!agent) continue;
    const all = Array.from({ length: c.rigsPerHost }, (_, i) => i);
    const rigs = spec.kind === 'uplink' ? all : spec.rigs;
    const template = new ReportTemplate(
      c.shape,
      c.rigsPerHost,
      agent.bootId,
      c.intervalMs,
      false,
      spec.kind === 'uplink' ? { uplinkDown: true } : { hardwareRigs: rigs },
    );
    agent.injectFault(template, spec.kind, rigs.map(rigId));
  }
}

async function stop(): Promise<void> {
  await Promise.all(agents.map((a) => a.stop()));
  agents = [];
  send({ type: 'stopped' });
  process.disconnect?.();
}

process.on('message', (msg: ToWorker) => {
  const fail = (err: unknown) => send({ type: 'error', message: (err as Error).stack ?? String(err) });
  try {
    if (msg.type === 'init') init(msg.config).catch(fail);
    else if (msg.type === 'go') for (const a of agents) a.go();
    else if (msg.type === 'pause') for (const a of agents) a.pause();
    else if (msg.type === 'stats') stats();
    else if (msg.type === 'fault') inject(msg.faults);
    else if (msg.type === 'stop') stop().catch(fail);
  } catch (err) {
    fail(err);
  }
});
// The orchestrator died or is done with us: do not linger as an orphan holding MQTT connections.
process.on('disconnect', () => process.exit(0));
