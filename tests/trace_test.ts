import assert from "node:assert/strict";
import { Scenario, within } from "../testing/scenario.ts";

interface ExportedSpan {
  name: string;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  kind: number;
}

/** A minimal OTLP/HTTP JSON collector that keeps the spans it receives. */
function startCollector() {
  const spans: ExportedSpan[] = [];
  const waiters: (() => void)[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    const body = await request.json();
    if (new URL(request.url).pathname === "/v1/traces") {
      for (const resource of body.resourceSpans ?? []) {
        for (const scope of resource.scopeSpans ?? []) spans.push(...scope.spans);
      }
      for (const waiter of waiters.splice(0)) waiter();
    }
    return Response.json({});
  });
  const waitForSpan = (name: string) => {
    const find = () => spans.find((span) => span.name === name);
    return within(
      (async () => {
        while (!find()) await new Promise<void>((resolve) => waiters.push(resolve));
        return find()!;
      })(),
      20_000,
      `the span "${name}" at the collector`,
    );
  };
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    waitForSpan,
    close: () => server.shutdown(),
  };
}

Deno.test({
  name: "with OTEL_DENO=true a task's publish and processing are one trace",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    const collector = startCollector();
    try {
      await using scenario = await Scenario.open();
      const otel = {
        OTEL_DENO: "true",
        OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
        OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
        OTEL_DENO_CONSOLE: "ignore",
      };
      const worker = await scenario.startWorker("traced", ["--time-scale", "0"], {
        ...otel,
        OTEL_SERVICE_NAME: "tareas-worker",
      });
      await scenario.produce(["--count", "1"], { ...otel, OTEL_SERVICE_NAME: "tareas-producer" });
      await scenario.waitForCompleted(1);
      worker.kill("SIGTERM");
      assert.equal((await worker.exit()).code, 0);
      const publish = await collector.waitForSpan(`publish ${scenario.queue}`);
      const process = await collector.waitForSpan(`process ${scenario.queue}`);
      assert.equal(process.traceId, publish.traceId, "one trace");
      assert.equal(process.parentSpanId, publish.spanId, "processing is a child of the publish");
      scenario.pass();
    } finally {
      await collector.close();
    }
  },
});
