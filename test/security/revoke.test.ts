/**
 * Revoking an agent the way the docs say: `hashwatch-collector remove-agent`, then SIGHUP to a
 * collector that does not watch its credentials file. The collector must survive the signal
 * (without a handler SIGHUP ends a Node process), drop the removed agent's live session, refuse
 * its password afterwards, and keep the other agent connected. Needs `npx tsc -b` first.
 */
import mqtt from 'mqtt';
import { afterAll, expect, it } from 'vitest';
import { COLLECTOR_CLI, cleanupAll, Proc, waitFor } from '../helpers/proc.js';
import { addAgentCli, startCollector } from '../helpers/stack.js';

afterAll(async () => {
  await cleanupAll();
}, 30_000);

/** Runs the collector CLI to the end; its exit code and what it printed. */
async function cli(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const proc = new Proc({ name: `cli ${args[0]}`, script: COLLECTOR_CLI, args });
  proc.start();
  await waitFor(() => !proc.alive, `${args[0]} to finish`, 30_000);
  const out = proc.lines.map((l) => (typeof l.msg === 'string' ? l.msg : JSON.stringify(l))).join('\n');
  return { code: proc.exit?.code ?? null, out, err: proc.stderr() };
}

it('remove-agent then SIGHUP drops the agent; the collector keeps running', async () => {
  const collector = await startCollector({
    name: 'revoke',
    anonymous: false,
    extra: { broker: { embedded: { watch_credentials: false } } },
  });
  const gone = await addAgentCli(collector, 'site-r', 'host-gone');
  const stays = await addAgentCli(collector, 'site-r', 'host-stays');
  const connect = (cred: { username: string; password: string }, clientId: string) =>
    mqtt.connectAsync(collector.mqttUrl, { ...cred, clientId, reconnectPeriod: 0, connectTimeout: 5000 });
  const hup = async (reloads: number) => {
    process.kill(collector.proc.pid as number, 'SIGHUP');
    await waitFor(
      () => collector.proc.find((l) => l.msg === 'Credentials reloaded').length === reloads,
      `reload ${reloads}`,
      10_000,
    );
  };
  // Not watched: agents added after the start are unknown until the signal.
  await expect(connect(gone, 'revoke-early')).rejects.toThrow(/Bad username or password/i);
  await hup(1);
  const a = await connect(gone, 'revoke-gone');
  const b = await connect(stays, 'revoke-stays');
  let aClosed = false;
  a.on('close', () => {
    aClosed = true;
  });
  try {
    const removed = await cli(['remove-agent', 'site-r', 'host-gone', '--config', collector.configFile]);
    expect(removed.code, removed.err).toBe(0);
    expect(removed.out).toContain('on SIGHUP');
    // Removing it again names the problem and exits 2.
    const again = await cli(['remove-agent', 'site-r', 'host-gone', '--config', collector.configFile]);
    expect(again.code).toBe(2);
    expect(again.err).toContain('No agent site-r/host-gone');

    // Not watched: nothing happens until the signal.
    await new Promise((r) => setTimeout(r, 300));
    expect(a.connected).toBe(true);
    await hup(2);
    await waitFor(() => aClosed, 'the removed agent to be disconnected', 10_000);
    expect(collector.proc.alive).toBe(true);
    await expect(connect(gone, 'revoke-gone-2')).rejects.toThrow(/Bad username or password/i);
    expect(b.connected).toBe(true);
    expect((await collector.get('/healthz')).status).toBe(200);
  } finally {
    a.end(true);
    await b.endAsync(true);
    await collector.proc.stop();
  }
}, 90_000);
