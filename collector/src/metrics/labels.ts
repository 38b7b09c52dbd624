/**
 * Label sets that rarely change between scrapes, escaped and UTF-8 encoded once and kept: per rig
 * `site="…",host="…",rig="…"` (which every per-rig series starts with) and the labels of its
 * `hashwatch_rig_info`, the rigs' sort order, and `,sensor="…"` / `,fan="…"` pairs. Every entry is
 * checked against the rig's current fields at each scrape, so a changed model or feed is re-encoded
 * at the next scrape, never served stale. The HTTP handler keeps one cache for its lifetime.
 */
import type { RigView } from '../fleet/view.js';
import { ITEMS_PER_STEP, runToEnd } from '../slices.js';
import { encode, encodeLabels, labelPairs } from './exposition.js';

/** One rig as the renderer visits it: its view in this scrape and its encoded label sets. */
export interface RigLabels {
  /** The rig's key in `FleetView.rigs` (`site/host/rig`), which orders the per-rig series. */
  readonly key: string;
  /** The rig's view as of this scrape. */
  readonly view: RigView;
  /** `site="…",host="…",rig="…"`. */
  readonly base: Uint8Array;
  /** `base` then `,model="…",api="…"` and `feed`/`rack` when set: the labels of `hashwatch_rig_info`. */
  readonly info: Uint8Array;
}

/** A cached rig: its label bytes and the field values they were encoded from. */
interface Entry {
  key: string;
  view: RigView;
  base: Uint8Array;
  info: Uint8Array;
  site: string;
  host: string;
  rig: string;
  model: string;
  api: string;
  feed: string | undefined;
  rack: string | undefined;
}

/**
 * Distinct values kept per label name by `pair()`. Sensor and fan names come from rig firmware: a
 * handful per model in practice, but a firmware that invents names must not grow the cache forever.
 */
const MAX_VALUES_PER_LABEL = 4096;

// Code-unit order, the same as the renderer's: stable across locales and cheap on 100k keys.
const codeUnitOrder = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

function encodeRig(key: string, view: RigView): Entry {
  const { site, host, rig, model, api, feed, rack } = view;
  const base = encodeLabels([
    ['site', site],
    ['host', host],
    ['rig', rig],
  ]);
  const info: [string, string][] = [
    ['site', site],
    ['host', host],
    ['rig', rig],
    ['model', model],
    ['api', api],
  ];
  if (feed !== undefined) info.push(['feed', feed]);
  if (rack !== undefined) info.push(['rack', rack]);
  return { key, view, base, info: encodeLabels(info), site, host, rig, model, api, feed, rack };
}

/** Whether the entry's bytes still describe `view` (same identity and inventory labels). */
function matches(e: Entry, view: RigView): boolean {
  return (
    e.site === view.site &&
    e.host === view.host &&
    e.rig === view.rig &&
    e.model === view.model &&
    e.api === view.api &&
    e.feed === view.feed &&
    e.rack === view.rack
  );
}

/** Encoded label sets kept between scrapes; see the file comment. Not tied to one FleetView. */
export class LabelCache {
  /** Every rig of the last call, in key order. */
  private sorted: Entry[] = [];
  /** Label name → value → `,name="value"` bytes. */
  private readonly pairs = new Map<string, Map<string, Uint8Array>>();

  /** `steps()` in one go. */
  rigs(rigs: ReadonlyMap<string, RigView>): readonly RigLabels[] {
    return runToEnd(this.steps(rigs));
  }

  /**
   * The rigs of `rigs` (a `FleetView.rigs`) in key order, each with its label sets, as steps that
   * yield where a sliced render may pause. Keys are sorted again only when rigs came or went since
   * the last call, and labels encoded again only for rigs whose labels changed. The result is valid
   * until the next call. Rigs that come or go while the steps pause show at the next call, as in
   * any sliced render; the result never holds a rig without a view.
   */
  *steps(rigs: ReadonlyMap<string, RigView>): Generator<void, readonly RigLabels[], void> {
    // A render that started earlier may still hold the list this call replaces: it keeps its own.
    let sorted = this.sorted;
    if (!(yield* sameKeys(rigs, sorted))) {
      sorted = yield* resorted(rigs, sorted);
      this.sorted = sorted;
    }
    for (let i = 0; i < sorted.length; i++) {
      if (i % ITEMS_PER_STEP === ITEMS_PER_STEP - 1) yield;
      const e = sorted[i]!;
      if (!matches(e, e.view)) sorted[i] = encodeRig(e.key, e.view);
    }
    return sorted;
  }

  /**
   * `,name="value"`, escaped and encoded, for labels with few distinct values (sensor and fan names)
   * that follow a rig's `base`.
   */
  pair(name: string, value: string): Uint8Array {
    let byValue = this.pairs.get(name);
    if (!byValue) {
      byValue = new Map();
      this.pairs.set(name, byValue);
    }
    let bytes = byValue.get(value);
    if (!bytes) {
      if (byValue.size >= MAX_VALUES_PER_LABEL) byValue.clear();
      bytes = encode(`,${labelPairs([[name, value]])}`);
      byValue.set(value, bytes);
    }
    return bytes;
  }
}

/**
 * Whether `rigs` has exactly the keys of `sorted`, taking each rig's current view on the way.
 * Same size and every cached key present means the same set of keys (map keys are unique).
 */
function* sameKeys(rigs: ReadonlyMap<string, RigView>, sorted: Entry[]): Generator<void, boolean, void> {
  if (rigs.size !== sorted.length) return false;
  for (let i = 0; i < sorted.length; i++) {
    if (i % ITEMS_PER_STEP === ITEMS_PER_STEP - 1) yield;
    const e = sorted[i]!;
    const view = rigs.get(e.key);
    if (!view) return false;
    e.view = view;
  }
  return true;
}

/**
 * The rigs of `rigs` in key order, keeping the entries of `previous` for rigs still there. Keys and
 * views are taken together, in one piece, so that a rig gone during a pause is still drawn from its
 * last view; sorting 50,000 keys takes 4-8 ms, encoding them ~170 ms, which is what is stepped.
 */
function* resorted(rigs: ReadonlyMap<string, RigView>, previous: Entry[]): Generator<void, Entry[], void> {
  const kept = new Map(previous.map((e) => [e.key, e]));
  const current = [...rigs].sort((a, b) => codeUnitOrder(a[0], b[0]));
  const sorted: Entry[] = new Array(current.length);
  for (let i = 0; i < current.length; i++) {
    if (i % ITEMS_PER_STEP === ITEMS_PER_STEP - 1) yield;
    const [key, view] = current[i]!;
    const e = kept.get(key);
    if (e) e.view = view;
    sorted[i] = e ?? encodeRig(key, view);
  }
  return sorted;
}
