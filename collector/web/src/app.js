/**
 * The hashwatch live page: connects to the collector's /live WebSocket, keeps the fleet in memory
 * (snapshot, then deltas and summaries) and renders it. The one rule it never breaks: when it is not
 * receiving data it says so, loudly, so a stale page is never mistaken for a quiet farm.
 */
import { drawChart } from './chart.js';
import { clock, duration, hashrate, percent, power } from './format.js';
import { STATES, stateInfo } from './states.js';

const PROTOCOL_VERSION = 1;
const HISTORY_MS = 3_600_000;
const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 30_000;

const $ = (id) => document.getElementById(id);

/** Builds an element; children are nodes or strings (always set as text, never parsed as HTML). */
function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else if (k === 'class') node.className = v;
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) node.append(c);
  return node;
}

function badge(state) {
  const info = stateInfo(state);
  return h('span', { class: `badge st-${state}`, 'data-state': state }, `${info.symbol} ${info.label}`);
}

// ---- fleet state, as the stream describes it ----

const fleet = {
  sites: new Map(),
  hosts: new Map(),
  rigs: new Map(),
  incidents: new Map(),
  history: [],
  summaryIntervalMs: 10_000,
  /** Collector clock minus browser clock, from the last frame. */
  clockOffsetMs: 0,
  /** Browser clock at the last frame received. */
  lastFrameAt: 0,
  haveData: false,
};

const hostKey = (x) => `${x.site}/${x.host}`;
const rigKey = (x) => `${x.site}/${x.host}/${x.rig}`;
const collectorNow = () => Date.now() + fleet.clockOffsetMs;

function applySnapshot(m) {
  fleet.sites = new Map(m.sites.map((s) => [s.site, s]));
  fleet.hosts = new Map(m.hosts.map((x) => [hostKey(x), x]));
  fleet.rigs = new Map(m.rigs.map((x) => [rigKey(x), x]));
  fleet.incidents = new Map(m.incidents.map((x) => [x.id, x]));
  fleet.history = m.history;
  fleet.summaryIntervalMs = m.summaryIntervalMs;
  fleet.haveData = true;
}

function applyDelta(m) {
  for (const s of m.sites) fleet.sites.set(s.site, s);
  for (const x of m.hosts) fleet.hosts.set(hostKey(x), x);
  for (const x of m.rigs) fleet.rigs.set(rigKey(x), x);
  for (const x of m.incidents) fleet.incidents.set(x.id, x);
}

function applySummary(m) {
  fleet.history.push(m.point);
  const cutoff = m.point.ts - HISTORY_MS;
  while (fleet.history.length > 0 && fleet.history[0].ts < cutoff) fleet.history.shift();
}

// ---- connection, with backoff and a watchdog ----

const conn = { ws: null, attempt: 0, retryAt: 0, retryTimer: 0, status: 'connecting', problem: '' };

function liveUrl() {
  const params = new URLSearchParams(location.search);
  const url = new URL(params.get('live') ?? '/live', location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const token = params.get('token');
  if (token) url.searchParams.set('token', token);
  return url.toString();
}

function setStatus(status, problem = '') {
  conn.status = status;
  conn.problem = problem;
  document.body.dataset.connected = status === 'live' ? 'true' : status === 'connecting' ? 'connecting' : 'false';
  renderStatus();
}

function connect() {
  clearTimeout(conn.retryTimer);
  let ws;
  try {
    ws = new WebSocket(liveUrl());
  } catch (err) {
    scheduleReconnect(`cannot open the WebSocket: ${err.message}`);
    return;
  }
  conn.ws = ws;
  ws.onmessage = (ev) => {
    if (conn.ws !== ws) return;
    let m;
    try {
      m = JSON.parse(ev.data);
    } catch {
      return;
    }
    onFrame(m);
  };
  ws.onclose = (ev) => {
    if (conn.ws !== ws) return;
    conn.ws = null;
    const why = ev.code === 1006 ? 'connection lost' : `closed (${ev.code}${ev.reason ? `: ${ev.reason}` : ''})`;
    scheduleReconnect(why);
  };
  ws.onerror = () => {};
}

function scheduleReconnect(problem) {
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** conn.attempt);
  const delay = base * (0.8 + Math.random() * 0.4);
  conn.attempt++;
  conn.retryAt = Date.now() + delay;
  clearTimeout(conn.retryTimer);
  conn.retryTimer = setTimeout(connect, delay);
  setStatus('disconnected', problem);
}

function onFrame(m) {
  fleet.lastFrameAt = Date.now();
  if (typeof m.nowMs === 'number') fleet.clockOffsetMs = m.nowMs - Date.now();
  switch (m.type) {
    case 'snapshot':
      if (m.v !== PROTOCOL_VERSION) {
        setStatus('disconnected', `the collector speaks live protocol v${m.v}, this page v${PROTOCOL_VERSION}: reload`);
        conn.ws?.close();
        return;
      }
      applySnapshot(m);
      conn.attempt = 0;
      setStatus('live');
      break;
    case 'delta':
      applyDelta(m);
      break;
    case 'summary':
      applySummary(m);
      break;
    case 'error':
      console.warn('live view error', m.reason, m.message);
      return;
    default:
      return;
  }
  scheduleRender();
}

/** Silence longer than a few summary intervals means the link is dead even if no close came. */
function watchdog() {
  if (conn.status !== 'live') return;
  const silentMs = Date.now() - fleet.lastFrameAt;
  if (silentMs > Math.max(3 * fleet.summaryIntervalMs, 15_000)) {
    const ws = conn.ws;
    conn.ws = null;
    ws?.close();
    scheduleReconnect(`no data for ${duration(silentMs)}`);
  }
}

// ---- rendering ----

let renderQueued = false;
function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    render();
  });
}

function route() {
  const p = new URLSearchParams(location.hash.replace(/^#/, ''));
  return { site: p.get('site') ?? undefined, host: p.get('host') ?? undefined };
}

const siteHref = (site) => `#site=${encodeURIComponent(site)}`;
const hostHref = (site, host) => `#site=${encodeURIComponent(site)}&host=${encodeURIComponent(host)}`;

function renderStatus() {
  const banner = $('banner');
  const sinceLast = fleet.lastFrameAt ? `Last update ${duration(Date.now() - fleet.lastFrameAt)} ago` : 'No data yet';
  if (conn.status === 'live') {
    banner.hidden = true;
    $('conn').textContent = '● live';
  } else {
    banner.hidden = false;
    const retryIn = Math.max(0, conn.retryAt - Date.now());
    if (conn.status === 'connecting') {
      $('banner-title').textContent = 'Connecting to the collector…';
      $('banner-detail').textContent = `${sinceLast}.`;
    } else {
      $('banner-title').textContent = 'DISCONNECTED from the collector: the figures below are stale';
      $('banner-detail').textContent =
        `${sinceLast} (${conn.problem}). Reconnecting ${retryIn > 500 ? `in ${duration(retryIn)}` : 'now'}…`;
    }
    $('conn').textContent = conn.status === 'connecting' ? '○ connecting' : '✖ disconnected';
  }
  $('updated').textContent = fleet.lastFrameAt ? `collector time ${clock(collectorNow())}` : '';
  document.getElementById('main').classList.toggle('stale', conn.status !== 'live' && fleet.haveData);
}

function renderLegend() {
  $('legend').replaceChildren(
    ...STATES.map((s) =>
      h('li', {}, h('span', { class: `swatch st-${s.id}`, 'aria-hidden': 'true' }, s.symbol), s.label),
    ),
  );
}

function uplinkChips(uplink) {
  if (!uplink || uplink.length === 0) return h('div', { class: 'uplink muted' }, 'no uplink probes');
  return h(
    'div',
    { class: 'uplink' },
    uplink.map((u) => {
      const good = u.targetsOk === u.targetsTotal;
      const bad = u.targetsOk === 0;
      return h(
        'span',
        { class: `chip ${good ? 'up' : bad ? 'down' : 'part'}`, 'data-role': u.role },
        `${good ? '✔' : bad ? '✖' : '◐'} ${u.role} ${u.targetsOk}/${u.targetsTotal}`,
        ` · loss ${Math.round(u.lossRatio * 100)}%`,
        u.latencyMs !== null ? ` · ${Math.round(u.latencyMs)} ms` : '',
      );
    }),
  );
}

function rigCounts(byState) {
  return h(
    'div',
    { class: 'counts' },
    STATES.filter((s) => byState[s.id] > 0).map((s) =>
      h('span', { class: 'count' }, `${byState[s.id]} ${s.label.toLowerCase()}`),
    ),
  );
}

function renderTiles() {
  const sites = [...fleet.sites.values()].sort((a, b) => a.site.localeCompare(b.site));
  const tiles = sites.map((s) => {
    const info = stateInfo(s.state);
    const ratio = s.expectedHashrateHs > 0 ? Math.min(1, s.hashrateHs / s.expectedHashrateHs) : 0;
    const bar = h('span', { class: 'bar-fill' });
    bar.style.width = `${(ratio * 100).toFixed(1)}%`;
    return h(
      'a',
      { class: `tile st-${s.state}`, href: siteHref(s.site), 'data-site': s.site, 'data-state': s.state },
      h('span', { class: 'tile-name' }, s.site),
      h('span', { class: 'tile-state' }, `${info.symbol} ${info.label}`),
      h('span', { class: 'tile-rate' }, `${hashrate(s.hashrateHs)} of ${hashrate(s.expectedHashrateHs)}`),
      h('span', { class: 'bar', 'aria-label': `${percent(s.hashrateHs, s.expectedHashrateHs)} of expected` }, bar),
      h(
        'span',
        { class: 'tile-meta' },
        `${percent(s.hashrateHs, s.expectedHashrateHs)} · ${power(s.powerW)} · hosts ${s.hostsOnline}/${s.hostsTotal}`,
      ),
      rigCounts(s.rigsByState),
      uplinkChips(s.uplink),
    );
  });
  $('tiles').replaceChildren(...(tiles.length > 0 ? tiles : [h('p', { class: 'muted' }, 'No sites reported yet.')]));
}

function table(headers, rows) {
  return h(
    'div',
    { class: 'scroll' },
    h(
      'table',
      {},
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          headers.map((x) => h('th', {}, x)),
        ),
      ),
      h('tbody', {}, rows),
    ),
  );
}

function renderSite(siteName) {
  const site = fleet.sites.get(siteName);
  const hosts = [...fleet.hosts.values()]
    .filter((x) => x.site === siteName)
    .sort((a, b) => a.host.localeCompare(b.host));
  const rigs = [...fleet.rigs.values()].filter((x) => x.site === siteName);
  const rows = hosts.map((x) => {
    const own = rigs.filter((r) => r.host === x.host);
    const rate = own.reduce((a, r) => a + (r.hashrateHs ?? 0), 0);
    const expected = own.reduce((a, r) => a + r.expectedHashrateHs, 0);
    const probes = x.probes.map((p) =>
      h(
        'div',
        { class: `probe ${p.ok ? 'up' : 'down'}` },
        `${p.ok ? '✔' : '✖'} ${p.role} ${p.target}: loss ${Math.round(p.lossRatio * 100)}%`,
        p.latencyMs !== null ? `, ${Math.round(p.latencyMs)} ms` : '',
        p.errorClass ? ` (${p.errorClass})` : '',
      ),
    );
    return h(
      'tr',
      { 'data-host': x.host, 'data-state': x.state },
      h('td', {}, h('a', { href: hostHref(siteName, x.host) }, x.host)),
      h('td', {}, badge(x.state)),
      h('td', {}, x.online ? 'online' : `offline${x.offlineReason ? ` (${x.offlineReason})` : ''}`),
      h('td', {}, String(own.length)),
      h('td', {}, `${hashrate(rate)} / ${hashrate(expected)}`),
      h('td', {}, x.lastReceivedMs ? `${duration(collectorNow() - x.lastReceivedMs)} ago` : '–'),
      h('td', {}, probes),
    );
  });
  return [
    h('h2', {}, 'Site ', siteName, ' ', site ? badge(site.state) : ''),
    site
      ? h(
          'p',
          {},
          `${hashrate(site.hashrateHs)} of ${hashrate(site.expectedHashrateHs)} expected · ${power(site.powerW)}`,
        )
      : '',
    site ? uplinkChips(site.uplink) : '',
    h('h3', {}, 'Hosts'),
    table(['host', 'state', 'agent', 'rigs', 'hashrate', 'last report', 'uplink probes'], rows),
  ];
}

function renderHost(siteName, hostName) {
  const host = fleet.hosts.get(`${siteName}/${hostName}`);
  const rigs = [...fleet.rigs.values()]
    .filter((x) => x.site === siteName && x.host === hostName)
    .sort((a, b) => a.rig.localeCompare(b.rig));
  const rows = rigs.map((r) =>
    h(
      'tr',
      { 'data-rig': r.rig, 'data-state': r.state },
      h('td', {}, r.rig),
      h('td', {}, r.model),
      h('td', {}, badge(r.state), h('div', { class: 'muted' }, `since ${duration(collectorNow() - r.stateSinceMs)}`)),
      h('td', {}, `${hashrate(r.hashrateHs)} / ${hashrate(r.expectedHashrateHs)}`),
      h('td', {}, power(r.powerW)),
      h('td', {}, r.maxTempC === null ? '–' : `${Math.round(r.maxTempC)} °C`),
      h('td', {}, r.boardsTotal === null ? '–' : `${r.boardsOk}/${r.boardsTotal}`),
      h('td', {}, r.poolConnected === null ? '–' : r.poolConnected ? '✔ connected' : '✖ down'),
      h(
        'td',
        { class: 'evidence' },
        [...(r.pollError ? [`poll error: ${r.pollError}`] : []), ...r.evidence].map((e) => h('div', {}, e)),
      ),
    ),
  );
  return [
    h('h2', {}, 'Host ', `${siteName}/${hostName}`, ' ', host ? badge(host.state) : ''),
    host
      ? h(
          'p',
          {},
          host.online ? 'Agent online' : `Agent offline${host.offlineReason ? ` (${host.offlineReason})` : ''}`,
          host.agentVersion ? ` · agent ${host.agentVersion}` : '',
          host.spoolDepth !== null ? ` · spool ${host.spoolDepth} reports` : '',
        )
      : '',
    h('h3', {}, 'Rigs'),
    table(['rig', 'model', 'state', 'hashrate', 'power', 'max temp', 'boards', 'pool', 'evidence'], rows),
  ];
}

function renderCrumbs(r) {
  const parts = [h('a', { href: '#' }, 'All sites')];
  if (r.site) parts.push(' › ', h('a', { href: siteHref(r.site) }, r.site));
  if (r.site && r.host) parts.push(' › ', h('a', { href: hostHref(r.site, r.host) }, r.host));
  $('crumbs').replaceChildren(...parts);
}

function renderIncidents(r) {
  const now = collectorNow();
  const list = [...fleet.incidents.values()]
    .filter((i) => !r.site || i.site === r.site)
    .sort((a, b) => (a.endMs === null ? 0 : 1) - (b.endMs === null ? 0 : 1) || b.startMs - a.startMs);
  if (list.length === 0) {
    $('incidents').replaceChildren(h('p', { class: 'muted' }, 'No incidents in the last hour.'));
    return;
  }
  const rows = list.map((i) =>
    h(
      'tr',
      { 'data-incident': i.id, class: i.endMs === null ? 'open' : 'closed' },
      h('td', {}, badge(i.cause)),
      h('td', {}, `${i.scope} ${i.scopeId}`),
      h('td', {}, clock(i.startMs)),
      h('td', {}, i.endMs === null ? `${duration(now - i.startMs)} (ongoing)` : duration(i.endMs - i.startMs)),
      h('td', {}, String(i.rigsAffected)),
      h('td', {}, `${hashrate(i.deficitHashes / Math.max(1, ((i.endMs ?? now) - i.startMs) / 1000))} avg missing`),
    ),
  );
  $('incidents').replaceChildren(table(['cause', 'scope', 'started', 'duration', 'rigs', 'deficit'], rows));
}

function renderChart(r) {
  $('chart-title').textContent = r.site ? `Hashrate of ${r.site}, last hour` : 'Fleet hashrate, last hour';
  const causes = drawChart($('chart'), fleet.history, { site: r.site, nowMs: collectorNow(), windowMs: HISTORY_MS });
  $('chart-legend').replaceChildren(
    h('li', {}, h('span', { class: 'swatch fill-ok', 'aria-hidden': 'true' }), 'hashing'),
    ...causes.map((c) =>
      h('li', {}, h('span', { class: `swatch fill-${c}`, 'aria-hidden': 'true' }), `missing: ${stateInfo(c).label}`),
    ),
  );
}

function render() {
  const r = route();
  renderCrumbs(r);
  renderTiles();
  const detail = $('detail');
  if (r.site) {
    detail.hidden = false;
    detail.replaceChildren(...(r.host ? renderHost(r.site, r.host) : renderSite(r.site)));
  } else {
    detail.hidden = true;
    detail.replaceChildren();
  }
  renderIncidents(r);
  renderChart(r);
  renderStatus();
}

renderLegend();
render();
addEventListener('hashchange', () => {
  render();
  if (route().site) $('detail').scrollIntoView({ block: 'start' });
});
// Durations and "last update" tick every second even when nothing arrives.
setInterval(() => {
  watchdog();
  renderStatus();
  renderIncidents(route());
}, 1000);
connect();
