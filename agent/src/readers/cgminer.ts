/**
 * Reader for the cgminer API family (TCP :4028): stock cgminer, Antminer bmminer/cgminer, Braiins
 * OS, LuxOS, Whatsminer btminer. One poll asks `summary+stats+pools+devs` in one multi-command;
 * firmware that rejects multi-commands is asked one command per connection (and remembered, so
 * the next poll goes straight to single commands). Firmware families that keep power, fans or
 * error codes elsewhere get their extra commands in a second request. Config keys: see README.md.
 */
import type { RigSample } from '@hashwatch/protocol';
import type { PollOptions, RigReader, RigTarget } from '../targets.js';
import { cgminerRequest, type WireResult } from './cgminer-client.js';
import { parseLenient } from './cgminer-json.js';
import { type CgminerReplies, detectFirmware, EXTRA_COMMANDS, parseCgminer, replyStatus } from './cgminer-parse.js';
import { withMeter } from './meter.js';
import { errorSample, finalizeSample } from './sample.js';

export const CGMINER_DEFAULT_PORT = 4028;

const BASE_COMMANDS: (keyof CgminerReplies)[] = ['summary', 'stats', 'pools', 'devs'];

type Fetched =
  | { ok: true; replies: CgminerReplies; repaired: boolean; missing: string[] }
  | { ok: false; sample: (nowMs: number) => RigSample };

/** Rigs (host:port) known to reject multi-commands; bounded so a fleet scan cannot grow it forever. */
const singleOnly = new Set<string>();
const SINGLE_ONLY_MAX = 100_000;

async function fetchCommands(
  target: RigTarget,
  port: number,
  commands: (keyof CgminerReplies)[],
  signal: AbortSignal,
  deadline: number,
  required: keyof CgminerReplies | undefined,
): Promise<Fetched> {
  const key = `${target.host}:${port}`;
  const replies: CgminerReplies = {};
  let repaired = false;
  const missing: string[] = [];
  const ask = (command: string): Promise<WireResult> =>
    cgminerRequest({ host: target.host, port, command, signal, deadline });
  const fail = (kind: 'invalid_reply', message: string): Fetched => ({
    ok: false,
    sample: (nowMs) => errorSample(target.id, nowMs, kind, message),
  });

  if (commands.length > 1 && !singleOnly.has(key)) {
    const wire = await ask(commands.join('+'));
    if (!wire.ok)
      return { ok: false, sample: (nowMs) => errorSample(target.id, nowMs, wire.error.kind, wire.error.message) };
    const parsed = parseLenient(wire.text);
    if (!parsed.ok) return fail('invalid_reply', parsed.message);
    repaired ||= parsed.repaired;
    const value = parsed.value as Record<string, unknown> | null;
    const isMulti = value !== null && typeof value === 'object' && commands.some((c) => Array.isArray(value[c]));
    if (isMulti) {
      for (const c of commands) {
        const part = (value as Record<string, unknown>)[c];
        const reply = Array.isArray(part) ? part[0] : undefined;
        if (reply !== undefined && replyStatus(reply)?.ok !== false) replies[c] = reply;
        else missing.push(c);
      }
      return { ok: true, replies, repaired, missing };
    }
    // The firmware read "a+b" as one unknown command: fall back to one command per connection.
    if (singleOnly.size < SINGLE_ONLY_MAX) singleOnly.add(key);
  }
  for (const c of commands) {
    const wire = await ask(c);
    if (!wire.ok) {
      if (c === required) {
        return { ok: false, sample: (nowMs) => errorSample(target.id, nowMs, wire.error.kind, wire.error.message) };
      }
      if (wire.error.kind === 'timeout') break;
      missing.push(c);
      continue;
    }
    const parsed = parseLenient(wire.text);
    if (!parsed.ok) {
      if (c === required) return fail('invalid_reply', parsed.message);
      missing.push(c);
      continue;
    }
    repaired ||= parsed.repaired;
    if (c !== required && replyStatus(parsed.value)?.ok === false) missing.push(c);
    else replies[c] = parsed.value;
  }
  return { ok: true, replies, repaired, missing };
}

async function pollCgminer(target: RigTarget, signal: AbortSignal, options: PollOptions): Promise<RigSample> {
  const port = target.port ?? CGMINER_DEFAULT_PORT;
  // One deadline for every request of this poll (the base commands, then the extras).
  const deadline = performance.now() + options.timeoutMs;
  const base = await fetchCommands(target, port, BASE_COMMANDS, signal, deadline, 'summary');
  if (!base.ok) return base.sample(options.now());
  const flags: string[] = [];
  if (base.repaired) flags.push('reply_repaired');
  for (const m of base.missing) flags.push(`${m}_unavailable`);
  const extras = EXTRA_COMMANDS[detectFirmware(base.replies)];
  if (extras.length > 0 && !signal.aborted && performance.now() < deadline) {
    const more = await fetchCommands(target, port, extras, signal, deadline, undefined);
    if (more.ok) {
      Object.assign(base.replies, more.replies);
      if (more.missing.length) flags.push('extras_unavailable');
    } else flags.push('extras_unavailable');
  }
  return parseCgminer(target.id, base.replies, options.now(), flags);
}

/** The cgminer-family reader. */
export const cgminerReader: RigReader = {
  api: 'cgminer',
  async poll(target, signal, options) {
    try {
      return finalizeSample(await withMeter(target, signal, options, () => pollCgminer(target, signal, options)));
    } catch (err) {
      // A reader bug must not take the round down: report it as this rig's error.
      return errorSample(target.id, options.now(), 'other', `Reader failed: ${(err as Error).message}`);
    }
  },
};

/** Forgets which rigs reject multi-commands (tests; a firmware upgrade). */
export function resetCgminerCache(): void {
  singleOnly.clear();
}
