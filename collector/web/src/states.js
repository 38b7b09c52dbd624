/**
 * The state taxonomy as the page shows it. Colours are the Okabe–Ito colour-blind-safe palette, and
 * every coloured thing also carries the text label and a symbol, so no one has to tell colours apart.
 * Keep in sync with STATES in collector/src/fleet/view.ts.
 */
export const STATES = [
  { id: 'ok', label: 'OK', symbol: '✔' },
  { id: 'degraded', label: 'Degraded', symbol: '◐' },
  { id: 'hardware_fault', label: 'Hardware fault', symbol: '✖' },
  { id: 'connectivity_loss', label: 'Connectivity loss', symbol: '⇅' },
  { id: 'pool_outage', label: 'Pool outage', symbol: '◎' },
  { id: 'power_loss', label: 'Power loss', symbol: '↯' },
  { id: 'unreachable', label: 'Unreachable', symbol: '?' },
  { id: 'unknown', label: 'Unknown', symbol: '…' },
];

const byId = new Map(STATES.map((s) => [s.id, s]));

export function stateInfo(id) {
  return byId.get(id) ?? { id, label: id, symbol: '?' };
}

/** Causes of a deficit: every state except ok, in stacking order. */
export const CAUSES = STATES.filter((s) => s.id !== 'ok').map((s) => s.id);
