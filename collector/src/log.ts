/**
 * The collector's logger: pino JSON lines on stdout, one event per line. Modules take a child
 * logger (`log.child({ module: 'ingest' })`) and add `site`/`host`/`rig` fields where they apply.
 */
import { type Logger, pino } from 'pino';

export type { Logger } from 'pino';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Builds the root logger; `destination` defaults to stdout (tests pass a stream or 'silent'). */
export function createLogger(level: LogLevel, destination?: NodeJS.WritableStream): Logger {
  const options = { level, base: { program: 'hashwatch-collector' }, timestamp: pino.stdTimeFunctions.isoTime };
  return destination ? pino(options, destination) : pino(options);
}
