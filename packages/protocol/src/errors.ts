/**
 * One table of error codes for everything the protocol rejects. A rejection is a value, not an
 * exception: ingest counts it by `code`, logs it once per (code, source) and never stores the payload.
 */
export const PROTOCOL_ERRORS = {
  HW_ERR_PAYLOAD_TOO_LARGE: 'Payload is larger than the protocol limit',
  HW_ERR_PAYLOAD_EMPTY: 'Payload is empty',
  HW_ERR_MALFORMED_JSON: 'Payload is not valid JSON',
  HW_ERR_NOT_OBJECT: 'Payload is not a JSON object',
  HW_ERR_SCHEMA: 'Payload does not match the message schema',
  HW_ERR_UNSUPPORTED_VERSION: 'Protocol version is not supported',
  HW_ERR_TS_OUT_OF_RANGE: 'Timestamp is outside the accepted window',
  HW_ERR_DUPLICATE_RIG: 'The same rig appears twice in one message',
  HW_ERR_BAD_TOPIC: 'Topic is not a hashwatch v1 topic',
  HW_ERR_BAD_NAME: 'Site or host name is not valid',
} as const;

export type ProtocolErrorCode = keyof typeof PROTOCOL_ERRORS;

/** Why a message or topic was rejected. `field` is a JSON pointer into the payload ('' = whole). */
export interface ProtocolError {
  code: ProtocolErrorCode;
  field: string;
  message: string;
}

export function protocolError(code: ProtocolErrorCode, field: string, detail?: string): ProtocolError {
  const base = PROTOCOL_ERRORS[code];
  const where = field === '' ? '' : ` at ${field}`;
  return { code, field, message: detail ? `${base}${where}: ${detail}` : `${base}${where}` };
}

export type Result<T> = { ok: true; value: T } | { ok: false; error: ProtocolError };
