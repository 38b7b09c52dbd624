/**
 * Every threshold of the diagnosis, with its default. Keys are snake_case because the collector
 * embeds this schema in its YAML config (`diagnosis:` section); validate with the protocol
 * package's `checkConfig(DiagnosisConfig, value, source)`.
 */
import { type Static, Type } from '@sinclair/typebox';

const Ratio = (def: number, description: string) => Type.Number({ minimum: 0, maximum: 1, default: def, description });

export const DiagnosisConfig = Type.Object(
  {
    /** Hashrate at or above this share of expected is `ok`. */
    ok_ratio: Ratio(0.9, 'Share of expected hashrate at or above which a rig is ok'),
    /** A degraded rig returns to ok only above ok_ratio + this margin (threshold hysteresis). */
    ok_return_margin: Ratio(0.02, 'Extra share needed to return from degraded to ok'),
    /** Hashrate at or above this share (and below ok_ratio) is `degraded`; below is a fault. */
    degraded_ratio: Ratio(0.5, 'Share of expected hashrate below which a hashing shortfall is a hardware fault'),
    /** Below this share of the *nominal* figure a rig is at least degraded, whatever its baseline says. */
    nominal_degraded_ratio: Ratio(
      0.8,
      'Share of nominal hashrate below which a rig is degraded regardless of baseline',
    ),
    /** Consecutive reports that must agree before a rig changes state (1 = no hysteresis). */
    confirm_reports: Type.Integer({ minimum: 1, maximum: 20, default: 2 }),
    /**
     * Consecutive reports before a rig is called `hardware_fault` or `degraded`: a hardware verdict
     * sends someone to the rack, and has no two-interval urgency, so it waits for one more sample.
     */
    confirm_reports_hardware: Type.Integer({ minimum: 1, maximum: 20, default: 3 }),
    /** Weight of one healthy sample in the learned baseline (EWMA of hashrate / nominal), after warm-up. */
    baseline_alpha: Ratio(0.001, 'EWMA weight of one healthy sample in the learned baseline'),
    /** The first N healthy samples of a rig set the baseline as a running mean. */
    baseline_warmup_samples: Type.Integer({ minimum: 1, maximum: 100_000, default: 60 }),
    /** Downward learning is this many times slower: slow decay must not teach itself as normal. */
    baseline_down_slowdown: Type.Number({ minimum: 1, maximum: 1000, default: 10 }),
    /** The learned baseline is clamped to [min, max] × nominal so slow decay cannot hide. */
    baseline_min_ratio: Type.Number({ minimum: 0.1, maximum: 2, default: 0.85 }),
    baseline_max_ratio: Type.Number({ minimum: 0.5, maximum: 3, default: 1.15 }),
    /** Metered power below this share of nominal power counts as "no power". */
    power_off_ratio: Ratio(0.05, 'Share of nominal power below which a rig has no power'),
    /** Chip/board temperature at or above which a rig is overheating. */
    hot_temp_c: Type.Number({ minimum: 40, maximum: 150, default: 90 }),
    /** A fan below this speed is stopped. */
    min_fan_rpm: Type.Number({ minimum: 0, maximum: 10_000, default: 300 }),
    /** A probe role is down when all its targets fail or their mean loss is at or above this. */
    probe_loss_ratio: Ratio(0.5, 'Mean probe loss at or above which a probe role is down'),
    /** Share of a feed's (or rack's) rigs vanishing together that makes it a feed (rack) event. */
    group_fraction: Ratio(0.6, "Share of a feed's or rack's rigs vanishing together that makes it a group event"),
    /** Smallest group that counts as "many rigs together". */
    group_min_rigs: Type.Integer({ minimum: 2, maximum: 1000, default: 2 }),
    /** Share of a site's rigs with pool trouble that makes it a pool outage without pool probes. */
    site_fraction: Ratio(0.5, "Share of a site's rigs with pool trouble that makes it site-wide"),
    /** A host or site takes a rig state when at least this share of its rigs are in it. */
    rollup_fraction: Ratio(0.5, 'Share of rigs in one state that makes it the host or site state'),
    /** An agent with no report for this many intervals is silent: its rigs become unknown. */
    silence_intervals: Type.Number({ minimum: 1, maximum: 100, default: 3 }),
    /** Agent clock offsets beyond this are corrected on the accounting time axis. */
    skew_tolerance_ms: Type.Integer({ minimum: 0, maximum: 86_400_000, default: 30_000 }),
    /** The active pool's last share older than this (agent clock) means shares have stalled. */
    share_stall_ms: Type.Integer({ minimum: 1000, maximum: 86_400_000, default: 600_000 }),
    /** Unknown slots remembered per rig for a later relabel (bounds memory of a long outage). */
    max_gap_slots: Type.Integer({ minimum: 10, maximum: 1_000_000, default: 20_160 }),
  },
  { additionalProperties: false, default: {} },
);
export type DiagnosisConfig = Static<typeof DiagnosisConfig>;

export const DEFAULT_CONFIG: DiagnosisConfig = {
  ok_ratio: 0.9,
  ok_return_margin: 0.02,
  degraded_ratio: 0.5,
  nominal_degraded_ratio: 0.8,
  confirm_reports: 2,
  confirm_reports_hardware: 3,
  baseline_alpha: 0.001,
  baseline_warmup_samples: 60,
  baseline_down_slowdown: 10,
  baseline_min_ratio: 0.85,
  baseline_max_ratio: 1.15,
  power_off_ratio: 0.05,
  hot_temp_c: 90,
  min_fan_rpm: 300,
  probe_loss_ratio: 0.5,
  group_fraction: 0.6,
  group_min_rigs: 2,
  site_fraction: 0.5,
  rollup_fraction: 0.5,
  silence_intervals: 3,
  skew_tolerance_ms: 30_000,
  share_stall_ms: 600_000,
  max_gap_slots: 20_160,
};

/** Defaults overlaid with `partial` (already validated, or hand-built in tests). */
export function diagnosisConfig(partial: Partial<DiagnosisConfig> = {}): DiagnosisConfig {
  return { ...DEFAULT_CONFIG, ...partial };
}
