/** Builds an in-process Agent for tests: temp data dir, fast reconnects, an injected poll round. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exampleRigSample } from '@hashwatch/protocol';
import type { PollFn } from '../../src/agent.js';
import { type AgentConfig, parseConfig } from '../../src/config.js';

/** A poll round of `rigCount` healthy, protocol-valid rigs (no real rigs needed). */
export function fakePoll(rigCount = 3): PollFn {
  return async (_rigs, _probes, options) => {
    const now = options.now();
    return {
      rigs: Array.from({ length: rigCount }, (_, i) => exampleRigSample(now, `rig-${i}`)),
      probes: [{ target: 'gw', kind: 'gateway', role: 'gateway', ok: true, attempts: 3, loss_ratio: 0, ts: now }],
      durationMs: 5,
      errors: {},
    };
  };
}

export function testConfig(brokerUrl: string, over: Record<string, unknown> = {}): AgentConfig {
  const dataDir = mkdtempSync(join(tmpdir(), 'hw-agent-'));
  return parseConfig(
    {
      site: 'farm-a',
      host: 'host-1',
      interval_ms: 1000,
      data_dir: dataDir,
      broker: { url: brokerUrl, reconnect_min_ms: 50, reconnect_max_ms: 400, keepalive_s: 5, connect_timeout_ms: 2000 },
      replay: { rate_per_s: 200, max_inflight: 20, ack_timeout_ms: 1500 },
      log: { level: 'silent' },
      ...over,
    },
    'test',
  );
}
