/**
 * The Diagnoser alone (pure, in process): time to diagnose one report of N rigs in a site of S
 * rigs (S/N hosts, every host born and reporting), and heap per rig of the state it keeps.
 */

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Diagnoser } from '@hashwatch/diagnosis';
import type { Report, RigSample } from '@hashwatch/protocol';
import { birthFor, ReportTemplate } from '../../fleet/payload.js';
import { median } from '../proc.js';

export interface DiagnosisRow {
  rigsPerReport: number;
  siteRigs: number;
  msPerReport: number;
  heapBytesPerRig: number;
  exportedBytesPerRig: number;
}

function gcFn(): () => void {
  setFlagsFromString('--expose_gc');
  return runInNewContext('gc') as () => void;
}

/** `reports` timed reports per row after 3 warm-up rounds of the whole site. */
export function benchDiagnosis(
  shape: RigSample,
  cases: Array<{ rigsPerReport: number; siteRigs: number }>,
  timedReports: number,
): DiagnosisRow[] {
  const gc = gcFn();
  const rows: DiagnosisRow[] = [];
  for (const { rigsPerReport, siteRigs } of cases) {
    const hosts = Math.max(1, Math.floor(siteRigs / rigsPerReport));
    const template = new ReportTemplate(shape, rigsPerReport, 'bench-diag-0001', 10_000);
    const t0 = Date.now() - 3600_000;
    gc();
    const heap0 = process.memoryUsage().heapUsed;
    const d = new Diagnoser();
    for (let h = 0; h < hosts; h++)
      d.observeBirth('s', `h${h}`, birthFor('bench-diag-0001', 1, rigsPerReport, 10_000, t0), t0);
    const reportAt = (seq: number, tsMs: number) => JSON.parse(template.render(seq, tsMs)) as Report;
    let seq = 0;
    for (let round = 0; round < 3; round++) {
      const ts = t0 + round * 10_000;
      const report = reportAt(seq++, ts);
      for (let h = 0; h < hosts; h++) d.observeReport('s', `h${h}`, report, ts + 50);
    }
    gc();
    const heapBytesPerRig = (process.memoryUsage().heapUsed - heap0) / (hosts * rigsPerReport);
    const exportedBytesPerRig = Buffer.byteLength(JSON.stringify(d.exportState())) / (hosts * rigsPerReport);
    const times: number[] = [];
    // Round by round, every host once per interval as in a real site: advancing the clock per timed
    // report instead made each host return from a silence, so every timed report opened a gap.
    let report = reportAt(seq++, t0 + 3 * 10_000);
    for (let i = 0; i < timedReports; i++) {
      const ts = t0 + (3 + Math.floor(i / hosts)) * 10_000;
      if (i > 0 && i % hosts === 0) report = reportAt(seq++, ts);
      const start = performance.now();
      d.observeReport('s', `h${i % hosts}`, report, ts + 50);
      times.push(performance.now() - start);
    }
    rows.push({
      rigsPerReport,
      siteRigs: hosts * rigsPerReport,
      msPerReport: median(times),
      heapBytesPerRig,
      exportedBytesPerRig,
    });
  }
  return rows;
}
