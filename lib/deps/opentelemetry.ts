/**
 * The OpenTelemetry API, pinned here and only here (see `amqplib.ts` for why a module and not the
 * import map).
 * @module
 */
export {
  type Attributes,
  context,
  type Counter,
  createNoopMeter,
  type Histogram,
  isSpanContextValid,
  type Meter,
  type MeterProvider,
  metrics,
  type ObservableResult,
  ProxyTracerProvider,
  type Span,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  trace,
} from "npm:@opentelemetry/api@1.10.0";
