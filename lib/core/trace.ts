/**
 * W3C trace context across the queue: the producer starts a span per task and puts its
 * `traceparent` in the message headers; the worker continues that trace while it runs the task.
 * With Deno's built-in OpenTelemetry (`OTEL_DENO=true`), or any registered tracer provider, both
 * spans are exported as one trace. Without one, nothing is recorded and no header is sent: a
 * header no one reads would cost every task a few microseconds.
 * @module
 */
import {
  context,
  isSpanContextValid,
  ProxyTracerProvider,
  type Span,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  trace,
} from "../deps/opentelemetry.ts";
import type { Task } from "./task.ts";

const tracer = trace.getTracer("tareas");

/** Whether spans are recorded, checked once: a provider is registered at start-up or never. */
let tracingChecked: boolean | undefined;

/**
 * Whether spans are recorded at all (Deno's OpenTelemetry is on, or the program registered a
 * provider). Without it, a worker skips trace context per task: it costs microseconds per task
 * and records nothing.
 */
function tracing(): boolean {
  if (tracingChecked === undefined) {
    const provider = trace.getTracerProvider();
    tracingChecked = !(provider instanceof ProxyTracerProvider) ||
      provider.getDelegateTracer("tareas") !== undefined;
  }
  return tracingChecked;
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** A span that records nothing, for when tracing is off. */
const NO_SPAN: Pick<Span, "end"> = { end: () => {} };

/**
 * Starts the producer's span for one task; returns it and the `traceparent` header to send.
 * Without tracing, no span is made and there is no header.
 */
export function startPublishSpan(
  queue: string,
  task: Task,
): { span: Pick<Span, "end">; traceparent?: string } {
  if (!tracing()) return { span: NO_SPAN };
  const span = tracer.startSpan(`publish ${queue}`, {
    kind: SpanKind.PRODUCER,
    attributes: attributes(queue, task, "publish"),
  });
  const spanContext = span.spanContext();
  return isSpanContextValid(spanContext)
    ? { span, traceparent: formatTraceparent(spanContext) }
    : { span };
}

/**
 * Runs `fn` inside the worker's span for one task, a child of the producer's span named by
 * `traceparent` when there is one, and ends the span with the outcome.
 */
export function withProcessSpan<T>(
  queue: string,
  task: Task,
  traceparent: unknown,
  fn: () => T,
): T | Promise<Awaited<T>> {
  // Not an async function: without tracing, a task that ends at once makes no promise.
  return tracing() ? processSpan(queue, task, traceparent, fn) : fn();
}

async function processSpan<T>(
  queue: string,
  task: Task,
  traceparent: unknown,
  fn: () => T,
): Promise<Awaited<T>> {
  const parent = typeof traceparent === "string" ? parseTraceparent(traceparent) : undefined;
  const parentContext = parent ? trace.setSpanContext(context.active(), parent) : context.active();
  const span = tracer.startSpan(`process ${queue}`, {
    kind: SpanKind.CONSUMER,
    attributes: attributes(queue, task, "process"),
  }, parentContext);
  try {
    const result = await context.with(trace.setSpan(parentContext, span), fn);
    span.setStatus({ code: SpanStatusCode.OK });
    return result;
  } catch (error) {
    span.setStatus({
      code: SpanStatusCode.ERROR,
      message: error instanceof Error ? error.message : String(error),
    });
    throw error;
  } finally {
    span.end();
  }
}

/** Formats a span context as a W3C `traceparent` header value. */
export function formatTraceparent(spanContext: SpanContext): string {
  const flags = spanContext.traceFlags.toString(16).padStart(2, "0");
  return `00-${spanContext.traceId}-${spanContext.spanId}-${flags}`;
}

/** Parses a W3C `traceparent` header value, or returns undefined when it is not one. */
export function parseTraceparent(value: string): SpanContext | undefined {
  const match = TRACEPARENT.exec(value.trim());
  if (!match) return undefined;
  const spanContext: SpanContext = {
    traceId: match[1]!,
    spanId: match[2]!,
    traceFlags: parseInt(match[3]!, 16),
    isRemote: true,
  };
  return isSpanContextValid(spanContext) ? spanContext : undefined;
}

function attributes(queue: string, task: Task, operation: string) {
  return {
    "messaging.system": "rabbitmq",
    "messaging.operation.type": operation,
    "messaging.destination.name": queue,
    "messaging.message.id": task.id,
    "tareas.task.seq": task.seq,
    "tareas.task.complexity": task.complexity,
  };
}
