/**
 * @hashwatch/diagnosis: the state classifier as pure functions (no I/O, time as an argument).
 * Filled by the diagnosis issue.
 */
export const DIAGNOSIS_VERSION = 0;
