/**
 * Replacing a file so that a crash or power cut at any point leaves either the old file or the new
 * one, never a torn mix: the credentials list and the diagnosis memory are both written this way.
 */
import { open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * Writes `parts` in order to a temporary file beside `file` (created with `mode`), fsyncs it,
 * renames it over `file` and fsyncs the directory so the rename itself survives a power cut. Parts
 * rather than one string let a caller wrap a large text without copying it. The temporary name is
 * per process, so two processes writing the same file cannot interleave into one temporary file.
 */
export async function writeFileAtomic(file: string, parts: readonly string[], mode = 0o644): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  const fh = await open(tmp, 'w', mode);
  try {
    for (const part of parts) await fh.write(part);
    await fh.sync();
  } catch (err) {
    await fh.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  await rename(tmp, file);
  const dir = await open(dirname(file), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
