// This module is the one place that names the pinned package; it imports rather than re-exports,
// to give the files it loads one by one the package's types.
// deno-lint-ignore-file no-import-prefix
/**
 * prom-client (the Prometheus client of Node.js), pinned here and only here (see `amqplib.ts` for
 * why a module and not the import map): its registry, which writes the text exposition format,
 * and the three kinds of metric tareas uses.
 *
 * Its files are imported one by one. The package's index also loads what tareas does not use (its
 * cluster aggregator, the Pushgateway with `node:http` and `node:https`, the default metrics with
 * `perf_hooks` and `v8`, the summary with `tdigest`), which slows a worker's start-up. The types
 * are the package's own.
 * @module
 */
import type * as PromClient from "npm:prom-client@15.1.3";
import counter from "npm:prom-client@15.1.3/lib/counter.js";
import gauge from "npm:prom-client@15.1.3/lib/gauge.js";
import histogram from "npm:prom-client@15.1.3/lib/histogram.js";
import registry from "npm:prom-client@15.1.3/lib/registry.js";

/** A set of metrics, written in the text exposition format by `metrics()`. */
export const Registry: typeof PromClient.Registry = registry;
/** A set of metrics, written in the text exposition format by `metrics()`. */
export type Registry = PromClient.Registry;
/** A value that only goes up. */
export const Counter: typeof PromClient.Counter = counter;
/** A value that only goes up. */
export type Counter<T extends string = string> = PromClient.Counter<T>;
/** A value that goes up and down. */
export const Gauge: typeof PromClient.Gauge = gauge;
/** A value that goes up and down. */
export type Gauge<T extends string = string> = PromClient.Gauge<T>;
/** Observations counted in buckets, with their sum and count. */
export const Histogram: typeof PromClient.Histogram = histogram;
/** Observations counted in buckets, with their sum and count. */
export type Histogram<T extends string = string> = PromClient.Histogram<T>;
