import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { DiagnoserState } from '@hashwatch/diagnosis';
import { type Birth, exampleBirth, exampleReport } from '@hashwatch/protocol';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FleetView } from '../fleet/view.js';
import type { CommittedReport, Ingest } from '../ingest/index.js';
import { loadDiagnosisState } from '../store/diagnosis.js';
import { Store } from '../store/store.js';
import { DIAGNOSIS_RUNNER_DEFAULTS, DiagnosisRunner, type DiagnosisRunnerOptions } from './runner.js';
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
    await saveStateFile(file, [JSON.stringify({ version: 1, rigs: ['a'] })], T0);
    await saveStateFile(file, ['{"version":1,', '"rigs":["b","c"]}'], T0 + 60_000);
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

/**
 * A runner on a real store with a host born and `reports` reports seen: it has memory worth saving.
 * `commit(seq)` delivers one more report, received 50 ms after its time (10 s apart from T0).
 */
function runnerWithMemory(
  store: Store,
  statePath: string | undefined,
  reports: number,
  extra: Partial<DiagnosisRunnerOptions> = {},
) {
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
    { ...DIAGNOSIS_RUNNER_DEFAULTS, ...(statePath ? { statePath } : {}), ...extra, config: {} },
  );
  runner.start();
  if (reports > 0) {
    store.ensureHost('site-a', 'host-1', now);
    for (const l of births) l('site-a', 'host-1', exampleBirth(now));
  }
  const commit = (seq: number) => {
    now = T0 + (seq + 1) * 10_000;
    const report = exampleReport(now, 2, seq);
    for (const l of committed) l([{ site: 'site-a', host: 'host-1', report, receivedAtMs: now + 50 }]);
  };
  for (let seq = 0; seq < reports; seq++) commit(seq);
  return { runner, commit };
}

/** When the host was last heard, in the memory saved at `statePath`. */
function savedLastSeen(statePath: string): number | null | undefined {
  return (loadStateFile(statePath)?.state as DiagnoserState | undefined)?.hosts[0]?.lastSeenMs;
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
      await runnerWithMemory(store, statePath, 6).runner.stop();
      const first = loadStateFile(statePath);
      expect(JSON.stringify(first?.state)).toContain('rig-01');
      expect(loadDiagnosisState(store)).toBeUndefined();

      // Restored and stopped without new input, it saves exactly the memory it was given.
      await runnerWithMemory(store, statePath, 0).runner.stop();
      expect(loadStateFile(statePath)?.state).toEqual(first?.state);
    }));

  it('takes over the memory an earlier version saved in the database, then deletes that row', () =>
    withStore(async (store, statePath) => {
      await runnerWithMemory(store, undefined, 6).runner.stop();
      const row = loadDiagnosisState(store);
      expect(JSON.stringify(row)).toContain('rig-01');
      expect(fs.existsSync(statePath)).toBe(false);

      await runnerWithMemory(store, statePath, 0).runner.stop();
      expect(loadStateFile(statePath)?.state).toEqual(row);
      expect(loadDiagnosisState(store)).toBeUndefined();
    }));

  describe('saving while reports arrive', () => {
    beforeEach(() => {
      vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    });
    afterEach(() => {
      vi.useRealTimers();
    });
    // 50 ms after the sixth report (seq 5) and the seventh (seq 6): what the host's memory says.
    const sixth = T0 + 60_000 + 50;
    const seventh = T0 + 70_000 + 50;

    it('saves the memory of the moment the save began; a report meanwhile is diagnosed once it is taken', () =>
      withStore(async (store, statePath) => {
        // Slices of 0 ms: the save pauses after every piece, so it spans many turns of the loop.
        const { runner, commit } = runnerWithMemory(store, statePath, 6, { saveSliceMs: 0 });
        vi.advanceTimersByTime(DIAGNOSIS_RUNNER_DEFAULTS.persistMs);
        const applied = runner.stats().outcomesApplied;
        commit(6);
        expect(runner.stats().outcomesApplied).toBe(applied);
        for (let i = 0; i < 500 && !fs.existsSync(statePath); i++) await new Promise((r) => setTimeout(r, 10));
        expect(savedLastSeen(statePath)).toBe(sixth);
        expect(runner.stats().outcomesApplied).toBe(applied + 1);
        expect(runner.stats().persistFailures).toBe(0);
        await runner.stop();
        expect(savedLastSeen(statePath)).toBe(seventh);
      }));

    it('diagnoses and saves on stop a report that arrived while a save was taking the memory', () =>
      withStore(async (store, statePath) => {
        const { runner, commit } = runnerWithMemory(store, statePath, 6, { saveSliceMs: 0 });
        vi.advanceTimersByTime(DIAGNOSIS_RUNNER_DEFAULTS.persistMs);
        commit(6);
        await runner.stop();
        expect(savedLastSeen(statePath)).toBe(seventh);
        expect(runner.stats().persistFailures).toBe(0);
      }));
  });
});
