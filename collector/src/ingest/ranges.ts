/** Seq bookkeeping for acks: sorted, merged inclusive ranges. Pure. */
import type { SeqRange } from '@hashwatch/protocol';

/** Turns any list of seqs (unsorted, repeats allowed) into sorted, merged inclusive ranges. */
export function toRanges(seqs: Iterable<number>): SeqRange[] {
  const sorted = [...new Set(seqs)].sort((a, b) => a - b);
  const out: SeqRange[] = [];
  for (const s of sorted) {
    const last = out[out.length - 1];
    if (last && s === last[1] + 1) last[1] = s;
    else out.push([s, s]);
  }
  return out;
}
