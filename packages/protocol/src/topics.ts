/**
 * Topic builders and the topic parser for `hw/v1/{site}/{host}/{kind}`. The parser is the first
 * gate of ingest: whatever it returns has a valid site and host, so nothing downstream re-checks.
 */
import { protocolError, type Result } from './errors.js';
import { isValidName } from './limits.js';

export const TOPIC_ROOT = 'hw/v1';

/** Topics an agent publishes to. */
export const AGENT_TOPIC_KINDS = ['birth', 'state', 'report'] as const;
/** Topics the collector publishes to, per agent. */
export const COLLECTOR_TOPIC_KINDS = ['ack', 'cmd'] as const;
export const TOPIC_KINDS = [...AGENT_TOPIC_KINDS, ...COLLECTOR_TOPIC_KINDS] as const;

export type AgentTopicKind = (typeof AGENT_TOPIC_KINDS)[number];
export type TopicKind = (typeof TOPIC_KINDS)[number];

/** The collector's own retained presence topic (`_` cannot start a site name: no clash). */
export const COLLECTOR_STATE_TOPIC = `${TOPIC_ROOT}/_collector/state`;

export interface ParsedTopic {
  site: string;
  host: string;
  kind: TopicKind;
}

function checkName(value: string, what: 'site' | 'host'): void {
  if (!isValidName(value)) {
    throw new Error(`Invalid ${what} name ${JSON.stringify(value)}: use [a-z0-9][a-z0-9_-]{0,62}`);
  }
}

/** Builds `hw/v1/{site}/{host}/{kind}`; throws on a name that would break the topic tree. */
export function agentTopic(site: string, host: string, kind: TopicKind): string {
  checkName(site, 'site');
  checkName(host, 'host');
  return `${TOPIC_ROOT}/${site}/${host}/${kind}`;
}

/**
 * Subscription filter for one message kind, over every site (default), one site, or one host.
 * `shareGroup` prefixes an MQTT 5 shared subscription (`$share/{group}/…`).
 */
export function topicFilter(
  kind: TopicKind,
  scope: { site?: string; host?: string; shareGroup?: string } = {},
): string {
  if (scope.site !== undefined) checkName(scope.site, 'site');
  if (scope.host !== undefined) checkName(scope.host, 'host');
  const filter = `${TOPIC_ROOT}/${scope.site ?? '+'}/${scope.host ?? '+'}/${kind}`;
  if (scope.shareGroup === undefined) return filter;
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(scope.shareGroup)) {
    throw new Error(`Invalid shared subscription group ${JSON.stringify(scope.shareGroup)}`);
  }
  return `$share/${scope.shareGroup}/${filter}`;
}

/** Parses a hashwatch agent/collector topic; anything else is a rejection with a reason. */
export function parseTopic(topic: string): Result<ParsedTopic> {
  if (topic.length > 256)
    return { ok: false, error: protocolError('HW_ERR_BAD_TOPIC', '', 'topic longer than 256 characters') };
  const parts = topic.split('/');
  if (parts.length !== 5 || parts[0] !== 'hw' || parts[1] !== 'v1') {
    return {
      ok: false,
      error: protocolError('HW_ERR_BAD_TOPIC', '', `expected hw/v1/{site}/{host}/{kind}, got ${JSON.stringify(topic)}`),
    };
  }
  const [, , site, host, kind] = parts as [string, string, string, string, string];
  if (!isValidName(site)) {
    return {
      ok: false,
      error: protocolError('HW_ERR_BAD_NAME', 'site', `${JSON.stringify(site)} is not a valid site name`),
    };
  }
  if (!isValidName(host)) {
    return {
      ok: false,
      error: protocolError('HW_ERR_BAD_NAME', 'host', `${JSON.stringify(host)} is not a valid host name`),
    };
  }
  if (!(TOPIC_KINDS as readonly string[]).includes(kind)) {
    return {
      ok: false,
      error: protocolError('HW_ERR_BAD_TOPIC', 'kind', `unknown message kind ${JSON.stringify(kind)}`),
    };
  }
  return { ok: true, value: { site, host, kind: kind as TopicKind } };
}
