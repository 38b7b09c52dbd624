/**
 * The HTTP JSON API (v1) and the health endpoints, registered on the shared HttpServer.
 * Handlers validate every input (params.ts) and read through store/queries.ts.
 */
import type { TransportHealth } from '../broker/transport.js';
import { HttpError, type HttpServer, sendJson } from '../http/server.js';
import {
  attribution,
  findRigId,
  getHost,
  getSite,
  listHosts,
  listIncidents,
  listRigs,
  listSites,
  rigSeries,
  TooManyRowsError,
} from '../store/queries.js';
import type { Store } from '../store/store.js';
import { boolParam, nameParam, optionalName, rangeParams, rigParam, stepParam } from './params.js';

export interface ApiOptions {
  /** Longest time range one request may ask for. */
  maxSpanMs: number;
  /** Most rows one request may read; past it the caller must narrow the range or raise `step`. */
  maxRows: number;
}

export interface ApiDeps {
  store: Store;
  transportHealth: () => TransportHealth;
  now?: () => number;
}

const DAY_MS = 86_400_000;

/** Registers /healthz, /readyz and /api/v1/* on `http`. */
export function registerApi(http: HttpServer, options: ApiOptions, deps: ApiDeps): void {
  const { store } = deps;
  const now = deps.now ?? Date.now;
  const api = (path: string, handler: Parameters<HttpServer['route']>[2]) =>
    http.route('GET', `/api/v1${path}`, handler, { auth: true });

  http.route('GET', '/healthz', () => ({ status: 'ok' }));
  http.route('GET', '/readyz', ({ res }) => {
    const storeHealth = store.health();
    const transport = deps.transportHealth();
    const ready = storeHealth.ok && transport.up;
    sendJson(res, ready ? 200 : 503, {
      status: ready ? 'ready' : 'not_ready',
      store: storeHealth,
      transport,
    });
    return undefined;
  });

  api('/sites', () => ({ sites: listSites(store) }));
  api('/sites/:site', ({ params }) => {
    const site = nameParam(params.site, 'site');
    const found = getSite(store, site);
    if (!found) throw new HttpError(404, 'HW_ERR_NOT_FOUND', `No site ${JSON.stringify(site)}`);
    return found;
  });
  api('/sites/:site/hosts', ({ params }) => {
    const site = nameParam(params.site, 'site');
    if (!getSite(store, site)) throw new HttpError(404, 'HW_ERR_NOT_FOUND', `No site ${JSON.stringify(site)}`);
    return { hosts: listHosts(store, site) };
  });
  api('/hosts/:site/:host', ({ params }) => {
    const site = nameParam(params.site, 'site');
    const host = nameParam(params.host, 'host');
    const found = getHost(store, site, host);
    if (!found) throw new HttpError(404, 'HW_ERR_NOT_FOUND', `No host ${JSON.stringify(`${site}/${host}`)}`);
    return found;
  });
  api('/rigs', ({ query }) => {
    const site = optionalName(query.get('site'), 'site');
    const host = optionalName(query.get('host'), 'host');
    if (host !== undefined && site === undefined) throw new HttpError(400, 'HW_ERR_BAD_PARAM', 'host needs site');
    return { rigs: listRigs(store, { site, host }, options.maxRows) };
  });
  api('/rigs/:site/:host/:rig/samples', ({ params, query }) => {
    const site = nameParam(params.site, 'site');
    const host = nameParam(params.host, 'host');
    const rig = rigParam(params.rig);
    const range = rangeParams(query, now(), DAY_MS, options.maxSpanMs);
    const step = stepParam(query.get('step'));
    const rigId = findRigId(store, site, host, rig);
    if (rigId === undefined)
      throw new HttpError(404, 'HW_ERR_NOT_FOUND', `No rig ${JSON.stringify(`${site}/${host}/${rig}`)}`);
    try {
      const points = rigSeries(store, rigId, range.fromMs, range.toMs, step, options.maxRows);
      return { site, host, rig, from_ms: range.fromMs, to_ms: range.toMs, step_ms: step ?? null, points };
    } catch (err) {
      if (err instanceof TooManyRowsError) {
        throw new HttpError(
          400,
          'HW_ERR_TOO_MANY_ROWS',
          `The range holds more than ${options.maxRows} rows: narrow it`,
        );
      }
      throw err;
    }
  });
  api('/incidents', ({ query }) => {
    const range = rangeParams(query, now(), 7 * DAY_MS, options.maxSpanMs);
    const site = optionalName(query.get('site'), 'site');
    const openOnly = boolParam(query.get('open'), 'open');
    return { incidents: listIncidents(store, { ...range, site, openOnly }, options.maxRows) };
  });
  api('/attribution', ({ query }) => {
    const range = rangeParams(query, now(), DAY_MS, options.maxSpanMs);
    const site = optionalName(query.get('site'), 'site');
    return { site: site ?? null, ...attribution(store, { ...range, site }) };
  });
}
