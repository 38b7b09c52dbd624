/**
 * The reliability table: each fault/security test file records one row per case and, in afterAll,
 * merges its rows (by file group) into test/RELIABILITY.md and prints the table. The rows are
 * kept as JSON inside an HTML comment of the same file, so the fault and security files (which
 * run one after the other) each update their part without a second output file.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const RELIABILITY_MD = fileURLToPath(new URL('../RELIABILITY.md', import.meta.url));

export interface ResultRow {
  /** Which file recorded it (rows of one group are replaced together). */
  group: string;
  /** The fault or input. */
  fault: string;
  /** What was checked. */
  checked: string;
  held: boolean;
  /** Reports produced (fault rows) or inputs tried (security rows). */
  produced: number;
  lost: number;
  duplicates: number;
  kind: 'fault' | 'input';
  note?: string;
}

const rows: ResultRow[] = [];

export function record(row: ResultRow): void {
  rows.push(row);
}

const JSON_START = '<!-- results-json';
const JSON_END = 'results-json -->';

function load(): ResultRow[] {
  if (!existsSync(RELIABILITY_MD)) return [];
  const text = readFileSync(RELIABILITY_MD, 'utf8');
  const a = text.indexOf(JSON_START);
  const b = text.indexOf(JSON_END);
  if (a < 0 || b < 0) return [];
  try {
    return JSON.parse(text.slice(a + JSON_START.length, b)) as ResultRow[];
  } catch {
    return [];
  }
}

/** Markdown table of `list` plus the totals. */
export function render(list: ResultRow[]): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  const lines = [
    '| fault / input | what was checked | result | reports produced / inputs tried | lost | duplicates stored |',
    '| --- | --- | --- | ---: | ---: | ---: |',
  ];
  for (const r of list) {
    const result = r.held ? 'held' : '**FAILED**';
    const note = r.note ? ` (${esc(r.note)})` : '';
    lines.push(
      `| ${esc(r.fault)} | ${esc(r.checked)}${note} | ${result} | ${r.produced} | ${r.lost} | ${r.duplicates} |`,
    );
  }
  const faults = list.filter((r) => r.kind === 'fault');
  const inputs = list.filter((r) => r.kind === 'input');
  const totals = [
    '',
    `- Faults survived: ${faults.filter((r) => r.held).length} of ${faults.length}`,
    `- Bad inputs and attacks tried: ${inputs.reduce((s, r) => s + r.produced, 0)} in ${inputs.length} cases, ${inputs.filter((r) => r.held).length} held`,
    `- Reports produced under faults: ${faults.reduce((s, r) => s + r.produced, 0)}`,
    `- Reports lost: ${list.reduce((s, r) => s + r.lost, 0)} (must be 0)`,
    `- Duplicates stored: ${list.reduce((s, r) => s + r.duplicates, 0)} (must be 0)`,
  ];
  return `${lines.join('\n')}\n${totals.join('\n')}\n`;
}

/** Merges this file's rows into RELIABILITY.md (replacing the group's old rows) and prints them. */
export function flush(group: string): void {
  const mine = rows.filter((r) => r.group === group);
  const all = [...load().filter((r) => r.group !== group), ...mine];
  const order = ['fault', 'security-fuzz', 'security-attacks'];
  all.sort((x, y) => order.indexOf(x.group) - order.indexOf(y.group));
  const text = [
    '# Reliability: faults injected and what held',
    '',
    'Written by `npx vitest run --project e2e fault security` (test/fault, test/security) with real',
    'agent and collector processes, real brokers (embedded aedes; Debian mosquitto for the external',
    'cases) and loopback TCP only. "Produced" is the agents\u2019 own truth (every (boot_id, seq) seen',
    'in their spool files, plus every seq below the highest one, since seqs are dense per boot);',
    '"stored" is read from the collector\u2019s SQLite file. Lost = produced and never stored;',
    'duplicates = extra rows per (host, boot_id, seq) or per (rig, ts), or reports with missing samples.',
    '',
    render(all),
    `${JSON_START}\n${JSON.stringify(all, null, 1)}\n${JSON_END}`,
    '',
  ].join('\n');
  writeFileSync(RELIABILITY_MD, text);
  // Generated: biome.json leaves this file out of `biome check`, so a run never dirties the lint.
  process.stdout.write(`\n${render(mine)}\n`);
}
