/**
 * The agent credentials file: YAML, `agents: [{ username, site, host, secret_hash }]`, mode 0600,
 * rewritten atomically (temp file + rename) so the broker's watcher never reads half a file.
 * One entry per agent: the username binds the connection to its site and host for the ACL.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { isValidName } from '@hashwatch/protocol';
import { parse, stringify } from 'yaml';
import { writeFileAtomic } from '../atomic-file.js';
import { generatePassword, hashSecret, parseSecretHash } from './secret.js';

/** One agent's credentials as stored. */
export interface AgentCredential {
  username: string;
  site: string;
  host: string;
  secret_hash: string;
}

export const USERNAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** What a read of the credentials file produced: the valid entries, and one line per bad one. */
export interface CredentialsFile {
  agents: AgentCredential[];
  problems: string[];
  /** False when the file does not exist (a fresh install: no agent may connect yet). */
  exists: boolean;
}

const HEADER =
  '# hashwatch agent credentials: written by `hashwatch-collector add-agent` and `remove-agent`.\n' +
  '# secret_hash is scrypt (N$r$p$salt$hash); the password itself is never stored.\n';

/** Default username of an agent: `.` cannot appear in site or host names, so it cannot collide. */
export function defaultUsername(site: string, host: string): string {
  return `${site}.${host}`;
}

/** Parses the file's text. Invalid entries are skipped with a problem line (the rest still work). */
export function parseCredentials(text: string, source: string): CredentialsFile {
  const problems: string[] = [];
  const agents: AgentCredential[] = [];
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    throw new Error(`Credentials file ${source} is not valid YAML: ${(err as Error).message}`);
  }
  if (doc === null || doc === undefined) return { agents, problems, exists: true };
  const list = Array.isArray(doc) ? doc : (doc as { agents?: unknown }).agents;
  if (list === undefined || list === null) return { agents, problems, exists: true };
  if (!Array.isArray(list)) {
    throw new Error(`Credentials file ${source}: agents must be a list of { username, site, host, secret_hash }`);
  }
  const seen = new Set<string>();
  list.forEach((raw: unknown, i: number) => {
    const at = `agents[${i}]`;
    const e = (raw ?? {}) as Partial<Record<keyof AgentCredential, unknown>>;
    if (typeof e.username !== 'string' || !USERNAME_PATTERN.test(e.username)) {
      problems.push(`${at}.username must match ${USERNAME_PATTERN.source}`);
    } else if (typeof e.site !== 'string' || !isValidName(e.site)) {
      problems.push(`${at}.site must be a valid site name ([a-z0-9][a-z0-9_-]{0,62})`);
    } else if (typeof e.host !== 'string' || !isValidName(e.host)) {
      problems.push(`${at}.host must be a valid host name ([a-z0-9][a-z0-9_-]{0,62})`);
    } else if (typeof e.secret_hash !== 'string' || parseSecretHash(e.secret_hash) === undefined) {
      problems.push(`${at}.secret_hash is not a scrypt hash written by \`add-agent\``);
    } else if (seen.has(e.username)) {
      problems.push(`${at}.username ${JSON.stringify(e.username)} appears twice; both entries are ignored`);
      const dup = agents.findIndex((a) => a.username === e.username);
      if (dup >= 0) agents.splice(dup, 1);
    } else {
      seen.add(e.username);
      agents.push({ username: e.username, site: e.site, host: e.host, secret_hash: e.secret_hash });
    }
  });
  return { agents, problems, exists: true };
}

/** Reads the credentials file; a missing file is an empty list with `exists: false`. */
export async function readCredentials(file: string): Promise<CredentialsFile> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { agents: [], problems: [], exists: false };
    throw new Error(`Cannot read credentials file ${file}: ${(err as Error).message}`);
  }
  return parseCredentials(text, file);
}

/** Writes the whole list atomically with mode 0600 (see `writeFileAtomic`). */
export async function writeCredentials(file: string, agents: readonly AgentCredential[]): Promise<void> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const body = HEADER + stringify({ agents: agents.map((a) => ({ ...a })) }, { lineWidth: 0 });
  await writeFileAtomic(file, [body], 0o600);
}

/**
 * Adds an agent: draws a strong random password, stores only its hash, and returns the password
 * with a YAML snippet for the agent's `broker:` section. Refuses a username or site/host pair that
 * already has credentials (remove it first to rotate).
 */
export async function addAgent(
  credentialsFile: string,
  site: string,
  host: string,
  options: { brokerUrl?: string; username?: string } = {},
): Promise<{ username: string; password: string; snippet: string }> {
  if (!isValidName(site)) throw new Error(`Invalid site name ${JSON.stringify(site)}: use [a-z0-9][a-z0-9_-]{0,62}`);
  if (!isValidName(host)) throw new Error(`Invalid host name ${JSON.stringify(host)}: use [a-z0-9][a-z0-9_-]{0,62}`);
  const username = options.username ?? defaultUsername(site, host);
  if (!USERNAME_PATTERN.test(username)) {
    throw new Error(`Invalid username ${JSON.stringify(username)}: use ${USERNAME_PATTERN.source}`);
  }
  const current = await readCredentials(credentialsFile);
  if (current.agents.some((a) => a.username === username)) {
    throw new Error(
      `Agent ${JSON.stringify(username)} already has credentials in ${credentialsFile}; remove it first to issue new ones`,
    );
  }
  const same = current.agents.find((a) => a.site === site && a.host === host);
  if (same) {
    throw new Error(
      `Host ${site}/${host} already has credentials (username ${JSON.stringify(same.username)}) in ${credentialsFile}; remove them first to issue new ones`,
    );
  }
  const password = generatePassword();
  const secret_hash = await hashSecret(password);
  await writeCredentials(credentialsFile, [...current.agents, { username, site, host, secret_hash }]);
  const snippet = stringify({
    site,
    host,
    broker: { url: options.brokerUrl ?? 'mqtt://COLLECTOR-ADDRESS:1883', username, password },
  });
  return { username, password, snippet };
}

/** Removes an agent's credentials; false when there was none. A running broker drops its connection on reload. */
export async function removeAgent(credentialsFile: string, username: string): Promise<boolean> {
  const current = await readCredentials(credentialsFile);
  const kept = current.agents.filter((a) => a.username !== username);
  if (kept.length === current.agents.length) return false;
  await writeCredentials(credentialsFile, kept);
  return true;
}

/**
 * The same ACL as the embedded broker, as a mosquitto `acl_file` (for the docker deployment with an
 * external broker). Passwords cannot be converted (different hash); use `mosquitto_passwd` for them.
 * `collectorUsername` gets read access to every agent topic and write access to ack/cmd/collector state.
 */
export function toMosquittoAcl(agents: readonly AgentCredential[], collectorUsername = 'hashwatch-collector'): string {
  const lines = [
    '# hashwatch ACL: generated; each agent may write only its own topics.',
    `user ${collectorUsername}`,
    'topic read hw/v1/+/+/birth',
    'topic read hw/v1/+/+/state',
    'topic read hw/v1/+/+/report',
    'topic write hw/v1/+/+/ack',
    'topic write hw/v1/+/+/cmd',
    'topic readwrite hw/v1/_collector/state',
    '',
  ];
  for (const a of agents) {
    const root = `hw/v1/${a.site}/${a.host}`;
    lines.push(
      `user ${a.username}`,
      `topic write ${root}/birth`,
      `topic write ${root}/state`,
      `topic write ${root}/report`,
      `topic read ${root}/ack`,
      `topic read ${root}/cmd`,
      'topic read hw/v1/_collector/state',
      '',
    );
  }
  return lines.join('\n');
}
