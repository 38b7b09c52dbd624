/**
 * Decoding and validation of every v1 message: size, JSON, schema (ajv, compiled once), then the
 * checks a schema cannot express (timestamps relative to the receiver's clock, duplicate rigs).
 * Pure: the receiver's clock is an argument.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { type ProtocolError, protocolError, type Result } from './errors.js';
import { LIMITS } from './limits.js';
import type * as S from './schemas.js';
import {
  Ack,
  AgentState,
  Birth,
  CollectorState,
  type Command,
  RebirthCommand,
  Report,
  ResendCommand,
} from './schemas.js';
import { parseReportJson } from './sliced-json.js';

export interface MessageTypes {
  birth: S.Birth;
  state: S.AgentState;
  report: S.Report;
  ack: S.Ack;
  cmd: S.Command;
  collector_state: S.CollectorState;
}
export type MessageKind = keyof MessageTypes;

const ajv = new Ajv({ allErrors: false, strict: true, coerceTypes: false, useDefaults: false });

const validators: { [K in Exclude<MessageKind, 'cmd'>]: ValidateFunction<MessageTypes[K]> } = {
  birth: ajv.compile<S.Birth>(Birth),
  state: ajv.compile<S.AgentState>(AgentState),
  report: ajv.compile<S.Report>(Report),
  ack: ajv.compile<S.Ack>(Ack),
  collector_state: ajv.compile<S.CollectorState>(CollectorState),
};
const commandValidators: Record<Command['cmd'], ValidateFunction> = {
  rebirth: ajv.compile(RebirthCommand),
  resend: ajv.compile(ResendCommand),
};

function schemaError(err: ErrorObject | undefined): ProtocolError {
  if (!err) return protocolError('HW_ERR_SCHEMA', '');
  let field = err.instancePath;
  let detail = err.message ?? 'invalid';
  if (err.keyword === 'required') {
    field = `${field}/${(err.params as { missingProperty: string }).missingProperty}`;
    detail = 'required field is missing';
  } else if (err.keyword === 'additionalProperties') {
    field = `${field}/${(err.params as { additionalProperty: string }).additionalProperty}`;
    detail = 'unknown field';
  } else if (err.keyword === 'enum') {
    detail = `must be one of ${(err.params as { allowedValues: unknown[] }).allowedValues.join(', ')}`;
  } else if (err.keyword === 'const' && field === '/v') {
    return protocolError('HW_ERR_UNSUPPORTED_VERSION', '/v', 'this collector speaks v1');
  }
  return protocolError('HW_ERR_SCHEMA', field, detail);
}

function checkTs(ts: number, field: string, nowMs: number): ProtocolError | undefined {
  if (ts > nowMs + LIMITS.maxFutureMs) {
    return protocolError(
      'HW_ERR_TS_OUT_OF_RANGE',
      field,
      `${new Date(ts).toISOString()} is more than 24 h ahead of the receiver's clock`,
    );
  }
  if (ts < nowMs - LIMITS.maxPastMs) {
    return protocolError('HW_ERR_TS_OUT_OF_RANGE', field, `${new Date(ts).toISOString()} is more than 400 days old`);
  }
  return undefined;
}

function checkUnique(ids: string[], field: string): ProtocolError | undefined {
  const seen = new Set<string>();
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i] as string;
    if (seen.has(id))
      return protocolError('HW_ERR_DUPLICATE_RIG', `${field}/${i}`, `rig ${JSON.stringify(id)} repeats`);
    seen.add(id);
  }
  return undefined;
}

/** Checks no JSON Schema can: timestamps against the receiver's clock, rigs listed once. */
function semanticError(kind: MessageKind, msg: MessageTypes[MessageKind], nowMs: number): ProtocolError | undefined {
  const top = checkTs(msg.ts, '/ts', nowMs);
  if (top) return top;
  if (kind === 'report') {
    const report = msg as S.Report;
    for (let i = 0; i < report.rigs.length; i++) {
      const sample = report.rigs[i] as S.RigSample;
      const e = checkTs(sample.ts, `/rigs/${i}/ts`, nowMs);
      if (e) return e;
    }
    for (let i = 0; i < report.probes.length; i++) {
      const e = checkTs((report.probes[i] as S.ProbeResult).ts, `/probes/${i}/ts`, nowMs);
      if (e) return e;
    }
    return checkUnique(
      report.rigs.map((r) => r.rig),
      '/rigs',
    );
  }
  if (kind === 'birth') {
    return checkUnique(
      (msg as S.Birth).rigs.map((r) => r.id),
      '/rigs',
    );
  }
  return undefined;
}

/**
 * Validates an already-parsed value as a message of `kind`. Use on the sending side as a guard,
 * and in tests; the receiving side uses `decode`.
 */
export function validate<K extends MessageKind>(kind: K, value: unknown, nowMs: number): Result<MessageTypes[K]> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return {
      ok: false,
      error: protocolError('HW_ERR_NOT_OBJECT', '', `got ${Array.isArray(value) ? 'array' : typeof value}`),
    };
  }
  let validator: ValidateFunction;
  if (kind === 'cmd') {
    const cmd = (value as { cmd?: unknown }).cmd;
    const v = typeof cmd === 'string' ? commandValidators[cmd as Command['cmd']] : undefined;
    if (!v) return { ok: false, error: protocolError('HW_ERR_SCHEMA', '/cmd', 'must be one of rebirth, resend') };
    validator = v;
  } else {
    validator = validators[kind as Exclude<MessageKind, 'cmd'>];
  }
  if (!validator(value)) return { ok: false, error: schemaError(validator.errors?.[0] ?? undefined) };
  const msg = value as MessageTypes[K];
  const semantic = semanticError(kind, msg, nowMs);
  if (semantic) return { ok: false, error: semantic };
  return { ok: true, value: msg };
}

/** Decodes a payload off the wire: size limit, JSON, then `validate`. Never throws. */
export function decode<K extends MessageKind>(
  kind: K,
  payload: Uint8Array | string,
  nowMs: number,
): Result<MessageTypes[K]> {
  const size = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.byteLength;
  if (size === 0) return { ok: false, error: protocolError('HW_ERR_PAYLOAD_EMPTY', '') };
  if (size > LIMITS.maxPayloadBytes) {
    return {
      ok: false,
      error: protocolError('HW_ERR_PAYLOAD_TOO_LARGE', '', `${size} bytes, limit ${LIMITS.maxPayloadBytes}`),
    };
  }
  let value: unknown;
  try {
    if (typeof payload === 'string') value = JSON.parse(payload);
    else {
      const bytes = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
      value = kind === 'report' ? parseReportJson(bytes) : JSON.parse(bytes.toString('utf8'));
    }
  } catch (err) {
    return { ok: false, error: protocolError('HW_ERR_MALFORMED_JSON', '', (err as Error).message.slice(0, 200)) };
  }
  return validate(kind, value, nowMs);
}

/** Serialises a message after validating it: an agent never sends what a collector would reject. */
export function encode<K extends MessageKind>(kind: K, msg: MessageTypes[K], nowMs: number): Result<string> {
  const checked = validate(kind, msg, nowMs);
  if (!checked.ok) return checked;
  return { ok: true, value: JSON.stringify(msg) };
}
