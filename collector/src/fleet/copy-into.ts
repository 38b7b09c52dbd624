/**
 * Keeping a rig's latest sample without keeping each report's objects.
 *
 * The fleet view holds one sample per rig. Stored as received, every report's sample tree (~16
 * objects for a rig with boards, sensors, fans and a pool) outlived the young generation: at 50,000
 * rigs each scavenge copied tens of MB of them, pausing the collector 30–60 ms, and they then died
 * in the old generation (BENCHMARKS.md, finding 27). Copying the values into the tree the view
 * already owns lets each report's objects die young.
 */

/**
 * Copies `source` into `target` when both have the same shape: the same keys in every object (in
 * any order) and arrays of the same lengths, recursively. A value is assigned only where it
 * differs, so a string equal to the one held is not kept. Returns false when the shapes differ;
 * the caller then replaces `target` (which may be partly updated by then) with a copy of `source`.
 */
export function copyInto(target: object, source: object): boolean {
  if (Array.isArray(source)) {
    if (!Array.isArray(target) || target.length !== source.length) return false;
    for (let i = 0; i < source.length; i++) if (!copyMember(target, i, source[i])) return false;
    return true;
  }
  if (Array.isArray(target)) return false;
  let keys = 0;
  for (const key in source) {
    if (!Object.hasOwn(target, key)) return false;
    if (!copyMember(target, key, (source as Record<string, unknown>)[key])) return false;
    keys++;
  }
  for (const _ in target) keys--;
  return keys === 0;
}

/** Copies one member into `holder[key]`; false when the held member and `value` differ in shape. */
function copyMember(holder: object, key: string | number, value: unknown): boolean {
  const h = holder as Record<string | number, unknown>;
  const held = h[key];
  if (typeof value === 'object' && value !== null)
    return typeof held === 'object' && held !== null && copyInto(held, value);
  if (typeof held === 'object' && held !== null) return false;
  if (held !== value) h[key] = value;
  return true;
}
