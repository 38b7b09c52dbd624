/**
 * Password hashing for agent credentials: scrypt with a random salt, the parameters encoded in the
 * string (`scrypt$N$r$p$salt$hash`, base64url) so they can be raised later without breaking old
 * entries. Verification is async (scrypt must not block the broker's event loop) and constant-time.
 */
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

const KEY_BYTES = 32;
const SALT_BYTES = 16;
/** N=2^14, r=8: 16 MiB and tens of ms per verify; successful verifies are cached by the caller. */
const DEFAULT_PARAMS = { N: 16_384, r: 8, p: 1 } as const;

interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

function derive(password: string, salt: Buffer, params: ScryptParams, keyBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, keyBytes, { ...params, maxmem: 256 * params.N * params.r }, (err, key) =>
      err ? reject(err) : resolve(key),
    );
  });
}

/** Hashes a secret for the credentials file. */
export async function hashSecret(password: string, params: ScryptParams = DEFAULT_PARAMS): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await derive(password, salt, params, KEY_BYTES);
  return `scrypt$${params.N}$${params.r}$${params.p}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

/** Parses a stored hash; undefined when it is not one we can verify (the entry then never matches). */
export function parseSecretHash(stored: string): { params: ScryptParams; salt: Buffer; key: Buffer } | undefined {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return undefined;
  const [N, r, p] = [Number(parts[1]), Number(parts[2]), Number(parts[3])];
  // Bounds keep a hand-edited file from making one login allocate gigabytes.
  if (!Number.isInteger(N) || N < 2 || N > 1_048_576 || (N & (N - 1)) !== 0) return undefined;
  if (!Number.isInteger(r) || r < 1 || r > 32 || !Number.isInteger(p) || p < 1 || p > 16) return undefined;
  const salt = Buffer.from(parts[4] ?? '', 'base64url');
  const key = Buffer.from(parts[5] ?? '', 'base64url');
  if (salt.length < 8 || key.length < 16) return undefined;
  return { params: { N, r, p }, salt, key };
}

/** True when `password` matches `stored`; false for a wrong password or an unusable hash. */
export async function verifySecret(password: string, stored: string): Promise<boolean> {
  const parsed = parseSecretHash(stored);
  if (parsed === undefined) return false;
  const key = await derive(password, parsed.salt, parsed.params, parsed.key.length);
  return timingSafeEqual(key, parsed.key);
}

/** A strong random password (32 bytes of entropy), safe in YAML, URLs and shell without quoting. */
export function generatePassword(): string {
  return randomBytes(32).toString('base64url');
}
