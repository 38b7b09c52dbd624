/** The collector's Prometheus metrics: renderer, HTTP handler and helpers. See README.md. */

export { SLICE_MS } from '../slices.js';
export {
  addHistogram,
  EXPOSITION_CONTENT_TYPE,
  ExpositionWriter,
  escapeLabelValue,
  type HistogramSnapshot,
} from './exposition.js';
export { createMetricsHandler, type MetricsHandlerOptions } from './handler.js';
export { COMMIT_LATENCY_BUCKETS_SECONDS, LatencyHistogram } from './histogram.js';
export { LabelCache } from './labels.js';
export {
  type BrokerStats,
  type IngestStats,
  type MetricsSources,
  type RenderOptions,
  renderFleetMetrics,
  renderMetrics,
  type StoreStats,
  writeFleetMetrics,
  writeMetrics,
} from './render.js';
export { createRuntimeRegistry } from './runtime.js';
