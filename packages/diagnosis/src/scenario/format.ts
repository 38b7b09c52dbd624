/**
 * The scenario file format (`packages/diagnosis/scenarios/*.yaml`): a fleet, a timeline of injected
 * events with their ground-truth cause, and how the collector hears the farm. Validated with the
 * protocol package's checkConfig so a typo names its key.
 */
import { checkConfig } from '@hashwatch/protocol';
import { type Static, Type } from '@sinclair/typebox';
import { parse } from 'yaml';

const closed = { additionalProperties: false } as const;

export const EVENT_KINDS = [
  'uplink_cut',
  'dns_fail',
  'pool_down',
  'board_dead',
  'fan_stop',
  'overheat',
  'throttle',
  'degrade_slow',
  'feed_cut',
  'site_power',
  'agent_crash',
  'host_reboot',
  'lan_switch',
  'new_rig',
] as const;
export type EventKind = (typeof EVENT_KINDS)[number];

const HostSpec = Type.Object(
  {
    id: Type.String(),
    /** Number of rigs, named `${id}-r01`… */
    rigs: Type.Integer({ minimum: 0, maximum: 1000 }),
    nominal_ths: Type.Number({ default: 110 }),
    nominal_power_w: Type.Number({ default: 3250 }),
    /** Where power_w comes from: the rig API, a metered PDU outlet, or nowhere. */
    power: Type.Unsafe<'rig' | 'meter' | 'none'>({ type: 'string', enum: ['rig', 'meter', 'none'], default: 'rig' }),
    /** Feeds assigned round-robin; racks assigned in contiguous blocks. */
    feeds: Type.Array(Type.String(), { default: [] }),
    racks: Type.Array(Type.String(), { default: [] }),
    pools: Type.Integer({ minimum: 1, maximum: 2, default: 1 }),
    /** Agent clock minus true time. */
    skew_s: Type.Number({ default: 0 }),
  },
  closed,
);

const SiteSpec = Type.Object({ id: Type.String(), hosts: Type.Array(HostSpec, { minItems: 1 }) }, closed);

const EventSpec = Type.Object(
  {
    kind: Type.Unsafe<EventKind>({ type: 'string', enum: [...EVENT_KINDS] }),
    at_min: Type.Number({ minimum: 0 }),
    /** Omitted: until the end of the scenario. */
    for_min: Type.Optional(Type.Number({ minimum: 0 })),
    site: Type.Optional(Type.String()),
    /** `site/host` */
    host: Type.Optional(Type.String()),
    /** `site/host/rig` */
    rigs: Type.Optional(Type.Array(Type.String())),
    feed: Type.Optional(Type.String()),
    rack: Type.Optional(Type.String()),
    /** board_dead: boards lost (of 3). */
    boards: Type.Optional(Type.Integer({ minimum: 1, maximum: 3 })),
    /** degrade_slow: hashrate share of healthy at the end of the ramp. */
    to: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    /** pool_down: the rigs have a second pool and fail over to it. */
    failover: Type.Optional(Type.Boolean()),
  },
  closed,
);

export const ScenarioSpec = Type.Object(
  {
    name: Type.String(),
    description: Type.String(),
    seed: Type.Integer({ default: 1 }),
    interval_s: Type.Number({ minimum: 1, default: 60 }),
    duration_min: Type.Number({ minimum: 1 }),
    /** onsite: the collector is in the farm LAN and keeps hearing agents when the uplink is cut. */
    collector: Type.Unsafe<'onsite' | 'remote'>({ type: 'string', enum: ['onsite', 'remote'], default: 'onsite' }),
    /** Probability per rig sample of a one-off hashrate dip, and per probe of a one-off failure. */
    glitch_prob: Type.Number({ minimum: 0, maximum: 1, default: 0.01 }),
    probe_glitch_prob: Type.Number({ minimum: 0, maximum: 1, default: 0.01 }),
    /**
     * Seconds a rig keeps hashing its queued work after its pool path fails (uplink cut, DNS
     * failure, pool outage without failover); then its hashrate is ~0 and it idles.
     */
    work_drain_s: Type.Number({ minimum: 0, default: 20 }),
    /** Power an idle rig still draws, as a share of nameplate (below the 5 % "no power" line). */
    idle_power_ratio: Type.Number({ minimum: 0, maximum: 1, default: 0.035 }),
    sites: Type.Array(SiteSpec, { minItems: 1 }),
    events: Type.Array(EventSpec, { default: [] }),
  },
  closed,
);
export type ScenarioSpec = Static<typeof ScenarioSpec>;
export type EventSpec = Static<typeof EventSpec>;
export type HostSpec = Static<typeof HostSpec>;

/** Parses and validates one scenario file's text; `source` names it in errors. */
export function parseScenario(text: string, source: string): ScenarioSpec {
  return checkConfig(ScenarioSpec, parse(text), source);
}
