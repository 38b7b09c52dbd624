/**
 * Process and Node.js runtime metrics (CPU, memory, event-loop lag, GC) from prom-client, on a
 * registry of their own: the fleet series never go through prom-client (see README).
 */
import { collectDefaultMetrics, Registry } from 'prom-client';

/**
 * prom-client gauges whose names end in `_total`, which `promtool check metrics` rejects as
 * misleading (they look like counters). Their per-type siblings (`nodejs_active_handles{type}`) stay.
 */
const LINT_FAILING_DEFAULTS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

/** A registry holding prom-client's default process/runtime metrics, unprefixed (`process_*`, `nodejs_*`). */
export function createRuntimeRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  for (const name of LINT_FAILING_DEFAULTS) registry.removeSingleMetric(name);
  return registry;
}
