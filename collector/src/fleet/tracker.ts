/**
 * Keeps the FleetView's "latest figures" current from ingest events: inventory from births,
 * presence from state/Will, newest samples, probes and agent self-stats from live reports.
 * States and incidents are the diagnosis runner's job, not this module's.
 */
import type { Birth } from '@hashwatch/protocol';
import type { CommittedReport, PresenceChange } from '../ingest/index.js';
import type { FleetView } from './view.js';

export class FleetTracker {
  private readonly view: FleetView;
  private readonly now: () => number;

  constructor(view: FleetView, now: () => number = Date.now) {
    this.view = view;
    this.now = now;
  }

  birth(site: string, host: string, birth: Birth): void {
    const nowMs = this.now();
    this.view.upsertHost(site, host, { bootId: birth.boot_id, agentVersion: birth.agent_version }, nowMs);
    for (const rig of birth.rigs) {
      const existing = this.view.getRig(site, host, rig.id);
      this.view.upsertRig(
        site,
        host,
        rig.id,
        {
          model: rig.model,
          api: rig.api,
          nominalHashrateHs: rig.nominal_hashrate_hs,
          ...(rig.nominal_power_w !== undefined ? { nominalPowerW: rig.nominal_power_w } : {}),
          ...(rig.feed !== undefined ? { feed: rig.feed } : {}),
          ...(rig.rack !== undefined ? { rack: rig.rack } : {}),
          // Until the diagnosis has a baseline, nameplate is what is expected.
          ...(existing && existing.expectedHashrateHs > 0 ? {} : { expectedHashrateHs: rig.nominal_hashrate_hs }),
        },
        nowMs,
      );
    }
  }

  presence(change: PresenceChange): void {
    const { session } = change;
    this.view.upsertHost(
      change.site,
      change.host,
      {
        online: session.status === 'online',
        bootId: session.bootId,
        ...(session.status === 'offline' && session.reason ? { offlineReason: session.reason } : {}),
      },
      this.now(),
    );
  }

  /** Live reports move "now"; backfilled ones only feed the diagnosis and the store. */
  committed(reports: readonly CommittedReport[]): void {
    for (const { site, host, report, receivedAtMs } of reports) {
      if (report.historical) continue;
      const current = this.view.getHost(site, host);
      if (current?.lastReportTs !== undefined && current.lastReportTs > report.ts) continue;
      for (const sample of report.rigs) this.view.recordSample(site, host, sample, receivedAtMs);
      this.view.upsertHost(
        site,
        host,
        {
          lastReportTs: report.ts,
          lastReceivedMs: receivedAtMs,
          clockSkewMs: receivedAtMs - report.ts,
          probes: report.probes,
          ...(report.agent ? { agent: report.agent } : {}),
          // A report is proof of life even if the retained `online` has not arrived yet.
          online: true,
          bootId: report.boot_id,
        },
        receivedAtMs,
      );
    }
  }
}
