import assert from "node:assert/strict";
import { freshQueue, run } from "../testing/scenario.ts";

Deno.test({
  name: "deno task demo tells the whole story and exits 0",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    const queue = freshQueue("demo");
    const svg = await Deno.makeTempFile({ suffix: ".svg" });
    try {
      const result = await run("demo", [
        "--queue",
        queue,
        "--time-scale",
        "0.1",
        "--timeline",
        svg,
      ]);
      const output = result.stdout + result.stderr;
      assert.equal(result.code, 0, output);
      assert.match(output, /✗ SIGKILL worker-\d in the middle of task #\d+/);
      assert.match(output, /^10\/10 tasks completed$/m);
      assert.match(output, /completed by worker-\d on attempt 2 \(redelivered\)/);
      assert.equal(output.match(/stopped gracefully \(exit 0\)/g)?.length, 2);
      assert.match(output, /all 10 tasks completed exactly once/);
      assert.match(
        await Deno.readTextFile(svg),
        /^<svg[^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/m,
      );
    } finally {
      await Deno.remove(svg);
    }
  },
});

Deno.test({
  name: "LOG_FORMAT=json makes every log line a JSON object",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = listener.addr.port;
    listener.close();
    const result = await run("produce", [], {
      AMQP_URL: `amqp://guest:guest@127.0.0.1:${port}`,
      LOG_FORMAT: "json",
    });
    assert.equal(result.code, 1);
    const lines = result.stderr.trim().split("\n");
    const logs = lines.slice(0, -1).map((line) => JSON.parse(line));
    const warnings = logs.filter((record) => record.level === "WARN");
    assert.equal(warnings.length, 1, `one line while retrying, got:\n${result.stderr}`);
    assert.equal(warnings[0].properties.url, `amqp://guest:***@127.0.0.1:${port}`);
    assert.match(warnings[0].message, /^Cannot reach .* \(.*connection refused.*\); retrying$/);
    assert.match(lines.at(-1)!, /^producer: Cannot reach the broker/);
  },
});
