/**
 * Pure parsing of cgminer-family API replies into a RigSample: stock cgminer, Antminer bmminer
 * (legacy `chain_acnN` stats and modern `STATS[0].chain[]`), Braiins OS (`tunerstatus`, `fans`,
 * `temps`), LuxOS (`power`) and Whatsminer btminer (`Power`, `HS RT`, `Factory GHS`,
 * `get_error_code`). No I/O; the clock is an argument. See readers/README.md for the rules.
 */
import {
  type BoardReading,
  type FanReading,
  type FaultKind,
  type FirmwareError,
  LIMITS,
  type PoolReading,
  type PoolStatus,
  type RigSample,
  type TempReading,
} from '@hashwatch/protocol';
import { compact, counter, Flags, fanRpm, hashrateHs, num, powerW, str, tempC, text, unitToHs } from './sample.js';

type Obj = Record<string, unknown>;

/** The replies of one poll, one single-command reply object per command (absent = not asked/failed). */
export interface CgminerReplies {
  summary?: unknown;
  stats?: unknown;
  pools?: unknown;
  devs?: unknown;
  tunerstatus?: unknown;
  fans?: unknown;
  temps?: unknown;
  power?: unknown;
  get_error_code?: unknown;
}

export type CgminerFirmware = 'cgminer' | 'braiins' | 'luxos' | 'whatsminer';

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The records of a section (`SUMMARY`, `STATS`, …) of a single-command reply. Read-only: the
 * parsed array itself when every entry is an object (the usual case, no copy per section per
 * rig and round), a filtered copy otherwise.
 */
export function section(reply: unknown, name: string): readonly Obj[] {
  if (!isObj(reply)) return [];
  const s = reply[name];
  if (!Array.isArray(s)) return [];
  return s.every(isObj) ? s : s.filter(isObj);
}

/** The STATUS of a reply: `[{STATUS:"S",Description,…}]` or, on btminer, a bare `"S"`. */
export function replyStatus(reply: unknown): { ok: boolean; message: string; description: string } | undefined {
  if (!isObj(reply)) return undefined;
  const st = reply.STATUS;
  if (typeof st === 'string') {
    return { ok: st === 'S' || st === 'I', message: str(reply.Msg) ?? '', description: str(reply.Description) ?? '' };
  }
  const first = Array.isArray(st) && isObj(st[0]) ? st[0] : undefined;
  if (!first) return undefined;
  const code = str(first.STATUS) ?? '';
  return {
    ok: code === 'S' || code === 'I',
    message: str(first.Msg) ?? '',
    description: str(first.Description) ?? '',
  };
}

/** Which firmware family answered, from the STATUS `Description` and the summary's own keys. */
export function detectFirmware(replies: CgminerReplies): CgminerFirmware {
  const desc = [replies.summary, replies.stats, replies.pools, replies.devs]
    .map((r) => replyStatus(r)?.description ?? '')
    .join(' ');
  if (/bosminer|braiins/i.test(desc)) return 'braiins';
  if (/luxminer|luxos/i.test(desc)) return 'luxos';
  if (/btminer|whatsminer/i.test(desc)) return 'whatsminer';
  const summary = section(replies.summary, 'SUMMARY')[0];
  if (summary && ('Factory GHS' in summary || 'Power_RT' in summary || 'HS RT' in summary)) return 'whatsminer';
  return 'cgminer';
}

/** Extra commands a firmware family needs for what its standard replies lack. */
export const EXTRA_COMMANDS: Record<CgminerFirmware, (keyof CgminerReplies)[]> = {
  cgminer: [],
  braiins: ['tunerstatus', 'fans', 'temps'],
  luxos: ['power'],
  whatsminer: ['get_error_code'],
};

/** Hashrate key prefixes (`MHS 5s` = MH/s over 5 s) and their multiplier to H/s. */
const RATE_PREFIX: Record<string, number> = { K: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15 };

/**
 * Finds a rate key like `MHS 5s` / `GHS 5s` and returns it in H/s. Runs three times per rig and
 * round over every summary key, so it compares strings instead of copying the object into
 * entries and running a regex per key.
 */
function rateByWindow(obj: Obj, window: string, flags: Flags): number | undefined {
  const suffix = `HS ${window}`;
  for (const key in obj) {
    if (key.length !== suffix.length + 1 || !key.endsWith(suffix)) continue;
    const multiplier = RATE_PREFIX[key[0] as string];
    if (multiplier !== undefined) return hashrateHs(obj[key], multiplier, flags);
  }
  return undefined;
}

/** Splits `"62-67-72-77"` (or a number, or an array) into readings; 0 = no sensor. */
function tempList(value: unknown, flags: Flags): number[] {
  const raw: unknown[] = Array.isArray(value)
    ? value
    : typeof value === 'string' && value.includes('-') && !value.trim().startsWith('-')
      ? value.split('-')
      : [value];
  const out: number[] = [];
  for (const v of raw) {
    const t = tempC(v, flags);
    if (t !== undefined) out.push(t);
  }
  return out;
}

function maxOf(values: number[]): number | undefined {
  return values.length ? Math.max(...values) : undefined;
}

/** Chip-status string: `o` = chip answering, `x`/`-` = bad. Spaces group chips and are ignored. */
function chipStatus(acs: string): { ok: number; total: number } {
  let ok = 0;
  let total = 0;
  for (const ch of acs) {
    if (ch === 'o') {
      ok++;
      total++;
    } else if (ch === 'x' || ch === '-') total++;
  }
  return { ok, total };
}

interface BoardDraft {
  id: string;
  chipsSeen?: number;
  chipsTotal?: number;
  hashrateHs?: number;
  idealHs?: number;
  chipTemps: number[];
  pcbTemps: number[];
  hwErrors?: number;
  /** The firmware's own alive/dead verdict for the board, where it gives one (`devs` Status). */
  alive?: boolean;
}

/** Boards, fans and the ideal rate from bmminer/cgminer `stats`, legacy or modern. */
function parseStats(
  stats: readonly Obj[],
  flags: Flags,
): { boards: BoardDraft[]; fans: FanReading[]; idealHs?: number; rateHs?: number; elapsed?: number } {
  const modern = stats.find((s) => Array.isArray(s.chain));
  if (modern) return parseModernStats(modern, flags);
  const legacy = stats.find((s) => Object.keys(s).some((k) => /^chain_acn\d+$/.test(k)));
  if (legacy) return parseLegacyStats(legacy, flags);
  return { boards: [], fans: [] };
}

function parseModernStats(s: Obj, flags: Flags) {
  const mult = unitToHs(str(s.rate_unit)) ?? 1e9;
  const boards: BoardDraft[] = [];
  for (const [i, c] of (s.chain as unknown[]).entries()) {
    if (!isObj(c)) continue;
    const acs = str(c.asic);
    const status = acs ? chipStatus(acs) : undefined;
    const asicNum = counter(c.asic_num, flags);
    boards.push({
      id: String(num(c.index) ?? i),
      chipsSeen: status && status.total > 0 ? status.ok : asicNum,
      chipsTotal: status && status.total > 0 ? status.total : asicNum,
      hashrateHs: hashrateHs(c.rate_real, mult, flags),
      idealHs: hashrateHs(c.rate_ideal, mult, flags),
      chipTemps: tempList(c.temp_chip, flags),
      pcbTemps: tempList(c.temp_pcb, flags),
      hwErrors: counter(c.hw, flags),
    });
  }
  const fans: FanReading[] = [];
  if (Array.isArray(s.fan)) {
    for (const [i, v] of s.fan.entries()) {
      const rpm = fanRpm(v, flags);
      if (rpm !== undefined) fans.push({ fan: `fan${i}`, rpm });
    }
  }
  return {
    boards,
    fans,
    idealHs: hashrateHs(s.rate_ideal, mult, flags),
    rateHs: hashrateHs(s.rate_5s, mult, flags),
    elapsed: counter(s.Elapsed, flags),
  };
}

function parseLegacyStats(s: Obj, flags: Flags) {
  const mult = unitToHs(str(s.rate_unit)) ?? 1e9;
  const slots = new Set<number>();
  for (const key of Object.keys(s)) {
    const m = /^chain_(?:acn|acs|rate)(\d+)$/.exec(key);
    if (m) slots.add(Number(m[1]));
  }
  const listed = [...slots].sort((a, b) => a - b);
  // S9-era firmware lists 16 slots, most empty; S19-era lists only the slots it has.
  const listsOnlyPresent = listed.length <= 4;
  const boards: BoardDraft[] = [];
  for (const n of listed) {
    const acs = str(s[`chain_acs${n}`])?.trim() ?? '';
    const acn = counter(s[`chain_acn${n}`], flags);
    const rateRaw = s[`chain_rate${n}`];
    const present = listsOnlyPresent || (acn ?? 0) > 0 || acs !== '' || (rateRaw !== undefined && rateRaw !== '');
    if (!present) continue;
    const status = acs ? chipStatus(acs) : undefined;
    const chipTemps = tempList(s[`temp_chip${n}`] ?? s[`temp2_${n}`], flags);
    const pcbTemps = tempList(s[`temp_pcb${n}`] ?? s[`temp${n}`], flags);
    boards.push({
      id: String(n),
      chipsSeen: status && status.total > 0 ? status.ok : acn,
      chipsTotal: status && status.total > 0 ? status.total : acn,
      hashrateHs: hashrateHs(rateRaw, mult, flags),
      idealHs: hashrateHs(s[`chain_rateideal${n}`], mult, flags),
      chipTemps,
      pcbTemps,
      hwErrors: counter(s[`chain_hw${n}`], flags),
    });
  }
  // fanN: S9 lists 8 slots with 0 in the empty ones, and fan_num says how many fans exist.
  const fanSlots: { n: number; rpm: number }[] = [];
  for (const [key, value] of Object.entries(s)) {
    const m = /^fan(\d+)$/.exec(key);
    if (!m) continue;
    const rpm = fanRpm(value, flags);
    if (rpm !== undefined) fanSlots.push({ n: Number(m[1]), rpm });
  }
  fanSlots.sort((a, b) => a.n - b.n);
  const fanNum = counter(s.fan_num, flags) ?? fanSlots.length;
  let fans = fanSlots;
  if (fanSlots.length > fanNum) {
    const spinning = fanSlots.filter((f) => f.rpm > 0);
    const stopped = fanSlots.filter((f) => f.rpm === 0).slice(0, Math.max(0, fanNum - spinning.length));
    fans = [...spinning, ...stopped].sort((a, b) => a.n - b.n);
  }
  return {
    boards,
    fans: fans.map((f) => ({ fan: `fan${f.n}`, rpm: f.rpm })),
    idealHs: hashrateHs(s.total_rateideal, mult, flags),
    elapsed: counter(s.Elapsed, flags),
  };
}

/** Boards from `devs` (Braiins, Whatsminer, stock cgminer ASC devices). */
function parseDevs(devs: readonly Obj[], flags: Flags): BoardDraft[] {
  return devs.map((d, i) => {
    const id = num(d.ASC) ?? num(d.Slot) ?? num(d.ID) ?? i;
    const alive = (str(d.Status) ?? 'Alive') === 'Alive' && str(d.Enabled) !== 'N';
    const chips = counter(d['Effective Chips'], flags);
    return {
      id: String(id),
      chipsSeen: chips,
      chipsTotal: chips,
      alive: alive && (chips === undefined || chips > 0),
      hashrateHs: rateByWindow(d, '5s', flags) ?? rateByWindow(d, 'av', flags),
      chipTemps: tempList(d['Chip Temp Max'] ?? d['Chip Temp Avg'], flags),
      pcbTemps: tempList(d.Temperature, flags),
      hwErrors: counter(d['Hardware Errors'], flags),
    };
  });
}

const POOL_STATUS: Record<string, PoolStatus> = {
  alive: 'alive',
  dead: 'dead',
  disabled: 'disabled',
  rejecting: 'rejecting',
};

/**
 * `Last Share Time`: epoch seconds (number or string) on cgminer/Braiins/LuxOS/btminer, elapsed
 * `"H:MM:SS"` on bmminer; 0 = no share yet.
 */
export function lastShareTs(value: unknown, nowMs: number, flags: Flags): number | undefined {
  let ts: number | undefined;
  if (typeof value === 'string' && /^\d+:\d{1,2}:\d{1,2}$/.test(value.trim())) {
    const [h, m, s] = value.trim().split(':').map(Number) as [number, number, number];
    ts = nowMs - (h * 3600 + m * 60 + s) * 1000;
  } else {
    const n = num(value, flags);
    if (n === undefined || n === 0) return undefined;
    if (n >= 1e12) ts = n;
    else if (n >= 1e9) ts = n * 1000;
    else {
      flags.add('last_share_invalid');
      return undefined;
    }
  }
  if (ts < LIMITS.minTsMs || ts > nowMs + LIMITS.maxFutureMs) {
    flags.add('last_share_invalid');
    return undefined;
  }
  return Math.round(ts);
}

function parsePools(pools: readonly Obj[], nowMs: number, flags: Flags): PoolReading[] {
  const hasActiveField = pools.some((p) => 'Stratum Active' in p);
  const out = pools.slice(0, LIMITS.maxPoolsPerRig).map((p): PoolReading & { priority: number } => {
    const statusText = (str(p.Status) ?? '').toLowerCase();
    const active = p['Stratum Active'];
    return compact({
      url: text(str(p.URL) ?? str(p['Stratum URL']) ?? ''),
      status: POOL_STATUS[statusText] ?? 'unknown',
      active: active === true || active === 'true' || active === 'Y',
      last_share_ts: lastShareTs(p['Last Share Time'], nowMs, flags),
      accepted: counter(p.Accepted, flags),
      rejected: counter(p.Rejected, flags),
      stale: counter(p.Stale, flags),
      get_failures: counter(p['Get Failures'], flags),
      remote_failures: counter(p['Remote Failures'], flags),
      priority: num(p.Priority) ?? 0,
    });
  });
  if (!hasActiveField) {
    // No `Stratum Active` at all: the failover order says which pool is mined on.
    const chosen = [...out].sort((a, b) => a.priority - b.priority).find((p) => p.status === 'alive');
    if (chosen) chosen.active = true;
  }
  return out.map(({ priority: _p, ...rest }) => rest);
}

/** What a Whatsminer error code points at, from its type digits (MicroBT error code table). */
export function whatsminerFaultKind(code: number): FaultKind {
  const digits = String(code);
  const type = digits.length === 6 && !digits.startsWith('1') ? Number(digits.slice(0, 2)) : Math.floor(code / 100);
  if (type === 1) return 'fan';
  if (type === 2 || type === 9) return 'power';
  if (type === 3 || type === 6) return 'temperature';
  if (type === 4 || type === 5 || type === 21 || (type >= 50 && type <= 56)) return 'board';
  if (type === 20) return 'network';
  return 'other';
}

const FAULT_TEXT: Record<FaultKind, string> = {
  fan: 'fan speed error',
  power: 'power supply error',
  temperature: 'temperature protection or sensor error',
  board: 'hashboard or chip error',
  network: 'pool connection error',
  other: 'firmware error',
};

function parseWhatsminerErrors(reply: unknown, flags: Flags): FirmwareError[] {
  if (!isObj(reply)) return [];
  const msg = reply.Msg;
  const list = isObj(msg) && Array.isArray(msg.error_code) ? msg.error_code : [];
  const out: FirmwareError[] = [];
  for (const entry of list) {
    const codes = isObj(entry) ? Object.keys(entry) : [entry];
    for (const c of codes) {
      const code = num(c, flags);
      if (code === undefined || !Number.isInteger(code) || code < 0) continue;
      const kind = whatsminerFaultKind(code);
      const since = isObj(entry) ? str(entry[String(c)]) : undefined;
      out.push({
        code: String(code),
        kind,
        message: text(`Whatsminer error ${code}: ${FAULT_TEXT[kind]}${since ? ` (since ${since})` : ''}`),
      });
    }
  }
  return out.slice(0, LIMITS.maxErrorCodesPerRig);
}

/**
 * Turns the replies of one poll into a sample. `summary` is required; every other reply is
 * optional and only adds fields.
 */
export function parseCgminer(
  rig: string,
  replies: CgminerReplies,
  nowMs: number,
  extraFlags: string[] = [],
): RigSample {
  const flags = new Flags();
  for (const f of extraFlags) flags.add(f);
  const summary = section(replies.summary, 'SUMMARY')[0];
  if (!summary) {
    const status = replyStatus(replies.summary);
    const why = status && !status.ok ? `the rig refused it: "${status.message}"` : 'it has no SUMMARY section';
    return {
      rig,
      ts: nowMs,
      reachable: false,
      error: { kind: 'invalid_reply', message: text(`Rig answered the summary command but ${why}`) },
    };
  }
  const firmware = detectFirmware(replies);
  const stats = parseStats(section(replies.stats, 'STATS'), flags);
  let boards = stats.boards;
  const devs = section(replies.devs, 'DEVS');
  if (boards.length === 0 && devs.length > 0) boards = parseDevs(devs, flags);

  // Braiins `temps`: board and chip temperature per hashchain id.
  for (const t of section(replies.temps, 'TEMPS')) {
    const id = String(num(t.ID) ?? num(t.TEMP) ?? '');
    const board = boards.find((b) => b.id === id);
    if (!board) continue;
    board.chipTemps = tempList(t.Chip, flags);
    board.pcbTemps = tempList(t.Board, flags);
  }

  const expectedChips = Math.max(0, ...boards.map((b) => Math.max(b.chipsTotal ?? 0, b.chipsSeen ?? 0)));
  const boardReadings: BoardReading[] = boards.slice(0, LIMITS.maxBoardsPerRig).map((b) => {
    const chipMax = maxOf(b.chipTemps);
    const seen = b.chipsSeen;
    // Chips found is the firmware's own "board is there" signal; hashrate can be 0 for lack of work.
    const ok = b.alive ?? (seen !== undefined ? seen > 0 : (b.hashrateHs ?? 0) > 0);
    return compact({
      board: b.id,
      ok,
      chips_seen: seen,
      chips_expected: expectedChips > 0 ? expectedChips : undefined,
      hashrate_hs: b.hashrateHs,
      temp_c: chipMax,
      hw_errors: b.hwErrors,
    });
  });

  const temps: TempReading[] = [];
  for (const b of boards) {
    const chip = maxOf(b.chipTemps);
    const pcb = maxOf(b.pcbTemps);
    if (chip !== undefined) temps.push({ sensor: `board${b.id}.chip`, temp_c: chip });
    if (pcb !== undefined) temps.push({ sensor: `board${b.id}.pcb`, temp_c: pcb });
  }
  let fans = stats.fans;

  const sample: RigSample = { rig, ts: nowMs, reachable: true };
  sample.hashrate_hs = rateByWindow(summary, '5s', flags) ?? hashrateHs(summary['HS RT'], 1e6, flags);
  sample.hashrate_hs ??= rateByWindow(summary, '1m', flags) ?? stats.rateHs;
  sample.hashrate_avg_hs = rateByWindow(summary, 'av', flags);
  sample.hashrate_ideal_hs = hashrateHs(summary['Factory GHS'], 1e9, flags) ?? stats.idealHs;
  if (sample.hashrate_ideal_hs === undefined) {
    const perBoard = boards.map((b) => b.idealHs).filter((v): v is number => v !== undefined);
    if (perBoard.length) sample.hashrate_ideal_hs = perBoard.reduce((a, b) => a + b, 0);
  }

  let power = powerW(summary.Power_RT ?? summary.Power, flags);
  if (firmware === 'braiins') {
    const tuner = section(replies.tunerstatus, 'TUNERSTATUS')[0];
    power ??= powerW(tuner?.ApproximateMinerPowerConsumption, flags);
    const bosFans = section(replies.fans, 'FANS');
    if (bosFans.length) {
      fans = [];
      for (const f of bosFans) {
        const rpm = fanRpm(f.RPM, flags);
        if (rpm !== undefined) fans.push({ fan: `fan${num(f.ID) ?? num(f.FAN) ?? fans.length}`, rpm });
      }
    }
  }
  if (firmware === 'luxos') power ??= powerW(section(replies.power, 'POWER')[0]?.Watts, flags);
  if (firmware === 'whatsminer') {
    const fanIn = fanRpm(summary['Fan Speed In'], flags);
    const fanOut = fanRpm(summary['Fan Speed Out'], flags);
    if (fans.length === 0) {
      if (fanIn !== undefined) fans.push({ fan: 'fan_in', rpm: fanIn });
      if (fanOut !== undefined) fans.push({ fan: 'fan_out', rpm: fanOut });
    }
    const envTemp = tempC(summary['Env Temp'], flags);
    if (envTemp !== undefined) temps.push({ sensor: 'env', temp_c: envTemp });
  }
  if (power !== undefined) {
    sample.power_w = power;
    sample.power_source = 'rig';
  }
  if (temps.length) sample.temps = temps.slice(0, LIMITS.maxSensorsPerRig);
  if (fans.length) sample.fans = fans.slice(0, LIMITS.maxFansPerRig);
  if (boardReadings.length) sample.boards = boardReadings;

  sample.hw_errors = counter(summary['Hardware Errors'], flags);
  const pools = parsePools(section(replies.pools, 'POOLS'), nowMs, flags);
  sample.accepted = counter(summary.Accepted, flags) ?? sumOf(pools, 'accepted');
  sample.rejected = counter(summary.Rejected, flags) ?? sumOf(pools, 'rejected');
  sample.stale = counter(summary.Stale, flags) ?? sumOf(pools, 'stale');
  if (pools.length) sample.pools = pools;
  sample.uptime_s = counter(summary.Elapsed, flags) ?? stats.elapsed;

  const errors = firmware === 'whatsminer' ? parseWhatsminerErrors(replies.get_error_code, flags) : [];
  if (errors.length) sample.firmware_errors = errors;
  const list = flags.list();
  if (list.length) sample.flags = list;
  return compact(sample);
}

function sumOf(pools: PoolReading[], key: 'accepted' | 'rejected' | 'stale'): number | undefined {
  const values = pools.map((p) => p[key]).filter((v): v is number => v !== undefined);
  return values.length ? values.reduce((a, b) => a + b, 0) : undefined;
}
