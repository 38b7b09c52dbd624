/**
 * @hashwatch/diagnosis: tells a connectivity loss from a hardware fault. Pure: no I/O, no clock;
 * time is an argument. See README.md for how the collector drives it.
 */
export { type Attribution, attribution } from './attribution.js';
export {
  classifySample,
  hardwareSignals,
  type Neighbourhood,
  poolTrouble,
  type RigExpectation,
  type Uplink,
  uplinkFromProbes,
  type Verdict,
} from './classify.js';
export { DEFAULT_CONFIG, DiagnosisConfig, diagnosisConfig } from './config.js';
export { Diagnoser, type DiagnoserState, type Presence } from './diagnoser.js';
export * from './types.js';

export const DIAGNOSIS_VERSION = 1;
