/**
 * The agent's logger: pino JSON lines on stdout, one event per line, with `site` and `host` on
 * every line (and `rig` where an event concerns one rig), so a farm's logs can be merged and grepped.
 */
import { type Logger, pino } from 'pino';

export type { Logger } from 'pino';

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

/** Creates the program logger. `destination` defaults to stdout (fd 1, synchronous writes). */
export function createLogger(
  level: LogLevel,
  bindings: { site: string; host: string },
  destination: NodeJS.WritableStream | undefined = undefined,
): Logger {
  const options = {
    level,
    base: { site: bindings.site, host: bindings.host },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  };
  return destination ? pino(options, destination) : pino(options, pino.destination({ dest: 1, sync: true }));
}

/** A logger that drops everything, for tests and for library use without output. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
