import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type Birth, exampleBirth, exampleReport } from '@hashwatch/protocol';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FleetView } from '../fleet/view.js';
import type { CommittedReport, Ingest } from '../ingest/index.js';
import { loadDiagnosisState } from '../store/diagnosis.js';
import { Store } from '../store/store.js';
import { DIAGNOSIS_RUNNER_DEFAULTS, DiagnosisRunner } from './runner.js';
import { loadStateFile, saveStateFile, stateFilePath } from './state-file.js';

const T0 = 1_795_593_011_390;

let dir: string;
let dbPath: string;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hw-state-file-'));
  dbPath = path.join(dir, 'hashwatch.db');
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('the diagnosis state file', () => {
  it('is replaced whole by each save, leaves no temporary file, and reads back what was saved', async () => {
    const file = stateFilePath(dbPath);
    expect(loadStateFile(file)).toBeUndefined();
    await saveStateFile(file, JSON.stringify({ version: 1, rigs: ['a'] }), T0);
    await saveStateFile(file, JSON.stringify({ version: 1, rigs: ['b', 'c'] }), T0 + 60_000);
    expect(loadStateFile(file)).toEqual({ savedMs: T0 + 60_000, state: { version: 1, rigs: ['b', 'c'] } });
    expect(fs.readdirSync(dir)).toEqual([path.basename(file)]);
  });

  it('refuses a file that is not a saved state, naming it', () => {
    const file = stateFilePath(dbPath);
    fs.writeFileSync(file, '{"version":1}');
    expect(() => loadStateFile(file)).toThrow(file);
    fs.writeFileSync(file, '{"saved_ms":1,"sta');
    expect(() => loadStateFile(file)).toThrow();
  });
});

/** A runner on a real store with a host born and reporting: it has memory worth saving. */
function runnerWithMemory(store: Store, statePath: string | undefined, reports: number) {
  const births: ((site: string, host: string, birth: Birth) => void)[] = [];
  const committed: ((reports: CommittedReport[]) => void)[] = [];
  const ingest = {
    onBirth: (l: (typeof births)[number]) => births.push(l),
    onPresence: () => undefined,
    onCommitted: (l: (typeof committed)[number]) => committed.push(l),
  } as unknown as Ingest;
  let now = T0;
  const runner = new DiagnosisRunner(
    { store, view: new FleetView(), ingest, log: pino({ level: 'silent' }), now: () => now, utilization: () => 0 },
    { ...DIAGNOSIS_RUNNER_DEFAULTS, ...(statePath ? { statePath } : {}), config: {} },
  );
  runner.start();
  if (reports > 0) {
    store.ensureHost('site-a', 'host-1', now);
    for (const l of births) l('site-a', 'host-1', exampleBirth(now));
  }
  for (let seq = 0; seq < reports; seq++) {
    now = T0 + (seq + 1) * 10_000;
    const report = exampleReport(now, 2, seq);
    for (const l of committed) l([{ site: 'site-a', host: 'host-1', report, receivedAtMs: now + 50 }]);
  }
  return runner;
}

/** Runs `body` on a fresh store at `dbPath`, closing it after. */
async function withStore(body: (store: Store, statePath: string) => Promise<void>): Promise<void> {
  const store = new Store({ path: dbPath, busyTimeoutMs: 200, cacheSizeMiB: 8, checkpointPages: 1000 });
  store.open();
  try {
    await body(store, stateFilePath(dbPath));
  } finally {
    store.close();
  }
}

describe('DiagnosisRunner with a state file', () => {
  it('saves its memory to the file on stop, and a new runner carries on from it', () =>
    withStore(async (store, statePath) => {
      await runnerWithMemory(store, statePath, 6).stop();
      const first = loadStateFile(statePath);
      expect(JSON.stringify(first?.state)).toContain('rig-01');
      expect(loadDiagnosisState(store)).toBeUndefined();

      // Restored and stopped without new input, it saves exactly the memory it was given.
      await runnerWithMemory(store, statePath, 0).stop();
      expect(loadStateFile(statePath)?.state).toEqual(first?.state);
    }));

  it('takes over the memory an earlier version saved in the database, then deletes that row', () =>
    withStore(async (store, statePath) => {
      await runnerWithMemory(store, undefined, 6).stop();
      const row = loadDiagnosisState(store);
      expect(JSON.stringify(row)).toContain('rig-01');
      expect(fs.existsSync(statePath)).toBe(false);

      await runnerWithMemory(store, statePath, 0).stop();
      expect(loadStateFile(statePath)?.state).toEqual(row);
      expect(loadDiagnosisState(store)).toBeUndefined();
    }));
});
