/**
 * Metered power for rigs whose API reports none (a PDU outlet, a smart plug). Config: the rig's
 * `meter` key, kind `http-json`: GET `url`, read watts at the dot path `field`. Every reader applies
 * it inside its poll through `withMeter`, so the rig's sample carries `power_w` with
 * `power_source: 'meter'`. A meter failure never hides the rig's own data: the sample keeps
 * everything else and gains the flag `meter_failed` (or `power_absurd` for a nonsense value).
 * Power on a rig that does not answer is the key evidence for "powered but unreachable", so the
 * meter is read whether or not the rig answers.
 */
import type { PollError, RigSample } from '@hashwatch/protocol';
import { httpGet } from '../http-get.js';
import type { MeterTarget, PollOptions, RigTarget } from '../targets.js';
import { classifyNetError, describeError, errorCode, Flags, powerW, text, withDeadline } from './sample.js';

export type MeterReading = { ok: true; powerW: number } | { ok: false; error: PollError; flag: string };

/** Largest meter reply we read (a PDU status page is a few KiB). */
const MAX_METER_BYTES = 1024 * 1024;

/** Reads the value at a dot path (`outlets.3.power_w`); array indexes are plain numbers. */
export function readDotPath(value: unknown, path: string): unknown {
  let cur: unknown = value;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

/** Reads one meter. Never throws. */
export async function readMeter(meter: MeterTarget, signal: AbortSignal, timeoutMs: number): Promise<MeterReading> {
  const failed = (kind: PollError['kind'], message: string, flag = 'meter_failed'): MeterReading => ({
    ok: false,
    error: { kind, message: text(message) },
    flag,
  });
  let body: string;
  try {
    const res = await withDeadline(signal, timeoutMs, (s) =>
      httpGet(meter.url, { signal: s, maxBodyBytes: MAX_METER_BYTES }),
    );
    if (res.status < 200 || res.status > 299) {
      return failed('protocol', `Meter ${meter.url} answered HTTP ${res.status}`);
    }
    body = res.body;
  } catch (err) {
    if (errorCode(err) === 'ERR_BODY_TOO_LARGE') {
      return failed('invalid_reply', `Meter ${meter.url} reply is too large`);
    }
    return failed(classifyNetError(err), `Meter ${meter.url}: ${describeError(err)}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return failed('invalid_reply', `Meter ${meter.url} reply is not JSON`);
  }
  const raw = readDotPath(parsed, meter.field);
  if (raw === undefined) return failed('invalid_reply', `Meter ${meter.url} reply has no field "${meter.field}"`);
  const watts = powerW(raw, new Flags());
  if (watts === undefined) {
    return failed('invalid_reply', `Meter ${meter.url} field "${meter.field}" is not a power in W`, 'power_absurd');
  }
  return { ok: true, powerW: watts };
}

/**
 * Runs a rig's own poll and, when the rig has a meter, the meter read concurrently; merges the
 * meter's watts into the sample. The meter takes precedence over the rig's own figure because an
 * operator configures one only where the rig's figure is missing or not trusted.
 */
export async function withMeter(
  target: RigTarget,
  signal: AbortSignal,
  options: PollOptions,
  pollRig: () => Promise<RigSample>,
): Promise<RigSample> {
  if (!target.meter) return pollRig();
  const [sample, reading] = await Promise.all([pollRig(), readMeter(target.meter, signal, options.timeoutMs)]);
  return applyMeterReading(sample, reading);
}

/** Merges a meter reading into a sample (pure). */
export function applyMeterReading(sample: RigSample, reading: MeterReading): RigSample {
  if (reading.ok) return { ...sample, power_w: reading.powerW, power_source: 'meter' };
  const flags = new Set(sample.flags ?? []);
  if (flags.size < 16) flags.add(reading.flag);
  return { ...sample, flags: [...flags] };
}
