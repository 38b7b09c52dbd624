/**
 * Reader for bitaxe-family miners running AxeOS (ESP-Miner): HTTP `GET /api/system/info`, one
 * JSON object with `hashRate` in GH/s, `power` in W, `temp`/`vrTemp` in °C, `fanrpm`, shares,
 * `uptimeSeconds` and the stratum settings. Config keys: see README.md.
 */
import type { FirmwareError, PoolReading, RigSample, TempReading } from '@hashwatch/protocol';
import { httpGet } from '../http-get.js';
import type { PollOptions, RigReader, RigTarget } from '../targets.js';
import { withMeter } from './meter.js';
import {
  classifyNetError,
  compact,
  counter,
  describeError,
  errorCode,
  errorSample,
  Flags,
  fanRpm,
  finalizeSample,
  hashrateHs,
  num,
  powerW,
  str,
  tempC,
  text,
  withDeadline,
} from './sample.js';

export const AXEOS_DEFAULT_PORT = 80;
const MAX_REPLY_BYTES = 1024 * 1024;

type Obj = Record<string, unknown>;

/** The stratum URL as AxeOS stores it (host only, port apart) turned into a pool URL. */
function poolUrl(host: unknown, port: unknown): string | undefined {
  const h = str(host);
  if (!h) return undefined;
  const p = num(port);
  const base = /^[a-z+]+:\/\//i.test(h) ? h : `stratum+tcp://${h}`;
  return text(p !== undefined ? `${base}:${p}` : base);
}

/** Parses an `/api/system/info` object (pure). */
export function parseAxeos(rig: string, info: unknown, nowMs: number): RigSample {
  if (typeof info !== 'object' || info === null || Array.isArray(info)) {
    return errorSample(rig, nowMs, 'invalid_reply', 'AxeOS /api/system/info did not return a JSON object');
  }
  const o = info as Obj;
  const flags = new Flags();
  const sample: RigSample = { rig, ts: nowMs, reachable: true };
  sample.hashrate_hs = hashrateHs(o.hashRate, 1e9, flags);
  sample.hashrate_ideal_hs = hashrateHs(o.expectedHashrate, 1e9, flags);
  const power = powerW(o.power, flags);
  if (power !== undefined) {
    sample.power_w = power;
    sample.power_source = 'rig';
  }
  const temps: TempReading[] = [];
  const chip = tempC(o.temp, flags);
  const vr = tempC(o.vrTemp, flags);
  const chip2 = tempC(o.temp2, flags);
  if (chip !== undefined) temps.push({ sensor: 'asic', temp_c: chip });
  if (chip2 !== undefined) temps.push({ sensor: 'asic2', temp_c: chip2 });
  if (vr !== undefined) temps.push({ sensor: 'vr', temp_c: vr });
  if (temps.length) sample.temps = temps;
  const fans = [
    { fan: 'fan0', rpm: fanRpm(o.fanrpm, flags) },
    { fan: 'fan1', rpm: fanRpm(o.fan2rpm, flags) },
  ].filter((f): f is { fan: string; rpm: number } => f.rpm !== undefined);
  if (fans.length) sample.fans = fans;

  const asicCount = counter(o.asicCount, flags);
  const powerFault = str(o.power_fault);
  if (asicCount !== undefined || sample.hashrate_hs !== undefined) {
    sample.boards = [
      compact({
        board: '0',
        ok: !powerFault && (asicCount === undefined || asicCount > 0),
        chips_expected: asicCount,
        hashrate_hs: sample.hashrate_hs,
        temp_c: chip,
      }),
    ];
  }
  sample.accepted = counter(o.sharesAccepted, flags);
  sample.rejected = counter(o.sharesRejected, flags);
  sample.uptime_s = counter(o.uptimeSeconds, flags);

  const fallback = o.isUsingFallbackStratum === true || o.isUsingFallbackStratum === 1;
  const pools: PoolReading[] = [];
  const primary = poolUrl(o.stratumURL, o.stratumPort);
  const secondary = poolUrl(o.fallbackStratumURL, o.fallbackStratumPort);
  // AxeOS does not say whether the stratum connection is up, so status stays `unknown`.
  if (primary) pools.push({ url: primary, status: 'unknown', active: !fallback });
  if (secondary) pools.push({ url: secondary, status: 'unknown', active: fallback });
  if (pools.length) sample.pools = pools;

  const errors: FirmwareError[] = [];
  if (powerFault)
    errors.push({ code: 'power_fault', kind: 'power', message: text(`AxeOS power fault: ${powerFault}`) });
  if (num(o.overheat_mode) === 1) {
    errors.push({ code: 'overheat_mode', kind: 'temperature', message: 'AxeOS entered overheat mode' });
  }
  if (errors.length) sample.firmware_errors = errors;
  const list = flags.list();
  if (list.length) sample.flags = list;
  return compact(sample);
}

async function pollAxeos(target: RigTarget, signal: AbortSignal, options: PollOptions): Promise<RigSample> {
  const port = target.port ?? AXEOS_DEFAULT_PORT;
  const host = target.host.includes(':') && !target.host.startsWith('[') ? `[${target.host}]` : target.host;
  const url = `http://${host}:${port}/api/system/info`;
  let body: string;
  try {
    const res = await withDeadline(signal, options.timeoutMs, (s) =>
      httpGet(url, { signal: s, headers: { accept: 'application/json' }, maxBodyBytes: MAX_REPLY_BYTES }),
    );
    if (res.status < 200 || res.status > 299) {
      return errorSample(target.id, options.now(), 'protocol', `AxeOS ${url} answered HTTP ${res.status}`);
    }
    body = res.body;
  } catch (err) {
    if (errorCode(err) === 'ERR_BODY_TOO_LARGE') {
      return errorSample(target.id, options.now(), 'invalid_reply', `AxeOS ${url} reply is larger than 1 MiB`);
    }
    return errorSample(target.id, options.now(), classifyNetError(err), `AxeOS ${url}: ${describeError(err)}`);
  }
  let info: unknown;
  try {
    info = JSON.parse(body);
  } catch {
    return errorSample(
      target.id,
      options.now(),
      'invalid_reply',
      `AxeOS ${url} reply is not JSON; it starts ${JSON.stringify(body.slice(0, 60))}`,
    );
  }
  return parseAxeos(target.id, info, options.now());
}

/** The AxeOS (bitaxe) reader. */
export const axeosReader: RigReader = {
  api: 'axeos',
  async poll(target, signal, options) {
    try {
      return finalizeSample(await withMeter(target, signal, options, () => pollAxeos(target, signal, options)));
    } catch (err) {
      return errorSample(target.id, options.now(), 'other', `Reader failed: ${(err as Error).message}`);
    }
  },
};
