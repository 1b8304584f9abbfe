/**
 * The OpenTelemetry API, pinned here and only here (see `amqplib.ts` for why a module and not the
 * import map).
 * @module
 */
export {
  context,
  isSpanContextValid,
  ProxyTracerProvider,
  type Span,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  trace,
} from "npm:@opentelemetry/api@1.10.0";
