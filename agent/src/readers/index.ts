/**
 * Every rig reader, in one visible list. Adding an API: write `<api>.ts` implementing RigReader,
 * add it to the `api` union in targets.ts, list it here and document it in README.md.
 */
import type { RigReader, RigTarget } from '../targets.js';
import { axeosReader } from './axeos.js';
import { cgminerReader } from './cgminer.js';

export const READERS: Record<RigTarget['api'], RigReader> = {
  cgminer: cgminerReader,
  axeos: axeosReader,
};

/** The reader for a rig API. */
export function readerFor(api: RigTarget['api']): RigReader {
  return READERS[api];
}

export { AXEOS_DEFAULT_PORT, parseAxeos } from './axeos.js';
export { CGMINER_DEFAULT_PORT, resetCgminerCache } from './cgminer.js';
export { type CgminerReplies, parseCgminer } from './cgminer-parse.js';
export { applyMeterReading, readMeter } from './meter.js';
