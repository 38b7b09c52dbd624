/**
 * The diagnosis memory on disk: one JSON file beside the database, replaced whole on every save.
 *
 * It used to be one row of the database. At 50,000 rigs that row is 25 MB, and rewriting it made
 * SQLite free the old row's ~6,000 overflow pages one by one before writing as many new ones: 0.4–0.5
 * s of the main thread per save under the fleet benchmark's load, the collector's largest stall. A
 * file is written by libuv's thread pool while the main thread goes on, and a rename makes it atomic.
 */
import { readFileSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';

/** The state file of the database at `dbPath`; a sibling like SQLite's own `-wal` and `-shm`. */
export function stateFilePath(dbPath: string): string {
  return `${dbPath}-diagnosis.json`;
}

/**
 * Writes `stateJson` (the Diagnoser's `exportStateJson()`) to `path` so that a crash or power cut
 * at any point leaves either the previous file or the new one: write a temporary file, fsync it,
 * rename it over the old one, fsync the directory.
 */
export async function saveStateFile(path: string, stateJson: string, savedMs: number): Promise<void> {
  const tmp = `${path}.tmp`;
  const file = await open(tmp, 'w');
  try {
    // The envelope is written around the state rather than concatenated with it: no 25 MB copy.
    await file.write(`{"saved_ms":${savedMs},"state":`);
    await file.write(stateJson);
    await file.write('}\n');
    await file.sync();
  } catch (err) {
    await file.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw err;
  }
  await file.close();
  await rename(tmp, path);
  const dir = await open(dirname(path), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

/**
 * The state saved at `path`, or undefined when there is no file. Throws when the file exists but is
 * not a saved state (the caller starts fresh and says so).
 */
export function loadStateFile(path: string): { savedMs: number; state: unknown } | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const parsed = JSON.parse(text) as { saved_ms?: unknown; state?: unknown };
  if (typeof parsed.saved_ms !== 'number' || typeof parsed.state !== 'object' || parsed.state === null) {
    throw new Error(`${path} is not a saved diagnosis state (no saved_ms and state)`);
  }
  return { savedMs: parsed.saved_ms, state: parsed.state };
}
