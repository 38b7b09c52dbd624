/**
 * The diagnosis memory on disk: one JSON file beside the database, replaced whole on every save.
 *
 * It used to be one row of the database. At 50,000 rigs that row is 25 MB, and rewriting it made
 * SQLite free the old row's ~6,200 overflow pages one by one before writing as many new ones:
 * 0.5–0.65 s of the main thread per save under the fleet benchmark's load, the collector's largest
 * stall (BENCHMARKS.md, finding 23). A file is written by libuv's thread pool while the main thread
 * goes on.
 */
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from '../atomic-file.js';

/** The state file of the database at `dbPath`; a sibling like SQLite's own `-wal` and `-shm`. */
export function stateFilePath(dbPath: string): string {
  return `${dbPath}-diagnosis.json`;
}

/**
 * Replaces `path` with the memory whose JSON text is the concatenation of `stateJson` (the pieces
 * of the Diagnoser's `exportStateJsonPieces()`), atomically.
 */
export async function saveStateFile(path: string, stateJson: readonly string[], savedMs: number): Promise<void> {
  // The envelope is written around the pieces rather than joined with them: no 25 MB copy.
  await writeFileAtomic(path, [`{"saved_ms":${savedMs},"state":`, ...stateJson, '}\n']);
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
