/**
 * `deno task produce --stdin`: one task per JSON line, the line's value being its payload.
 */
import assert from "node:assert/strict";
import { createWorker, type Task } from "../mod.ts";
import { run, Scenario, within } from "../testing/scenario.ts";

const options = { sanitizeOps: true, sanitizeResources: true };

Deno.test({
  name: "produce --stdin enqueues one task per JSON line with that line's value as payload",
  ...options,
  async fn() {
    await using scenario = await Scenario.open();
    const lines = ['{"image":"a.png","width":100}', "", '"just a string"', "[1,2,3]"];
    const result = await run(
      "producer.ts",
      ["--queue", scenario.queue, "--stdin"],
      { AMQP_URL: scenario.url },
      lines.join("\n") + "\n",
    );
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /Published 3 task\(s\) to .*, all confirmed by the broker/);

    const seen: Task[] = [];
    const three = Promise.withResolvers<void>();
    const worker = await createWorker({
      url: scenario.url,
      queue: scenario.queue,
      handler: (task) => {
        seen.push(task);
        if (seen.length === 3) three.resolve();
      },
    });
    await within(three.promise, 15_000, "three tasks to run");
    await worker.close();
    assert.deepEqual(seen.map((task) => task.payload), [
      { image: "a.png", width: 100 },
      "just a string",
      [1, 2, 3],
    ]);
    assert.deepEqual(seen.map((task) => task.seq), [1, 2, 3]);
    scenario.pass();
  },
});

Deno.test({
  name: "produce --stdin stops at a line that is not JSON: one line naming it, exit 2, and the " +
    "tasks before it confirmed",
  ...options,
  async fn() {
    await using scenario = await Scenario.open();
    // Tried: a valid first line, then a line that is not JSON, then a valid one never read.
    const input = '{"ok":1}\n{not json\n{"ok":3}\n';
    const result = await run(
      "producer.ts",
      ["--queue", scenario.queue, "--stdin"],
      { AMQP_URL: scenario.url, LOG_LEVEL: "warning" },
      input,
    );
    assert.equal(result.code, 2, result.stderr);
    const lines = result.stderr.trim().split("\n");
    assert.equal(lines.length, 1, `one line on stderr:\n${result.stderr}`);
    assert.match(
      lines[0]!,
      /^producer: Line 2 of standard input is not JSON \(.*\); 1 task\(s\) before it were published and confirmed$/,
    );
    assert.equal(await scenario.ready(), 1, "the first line's task is in the queue, only it");
    scenario.pass();
  },
});

Deno.test({
  name: "produce --stdin with --count is a usage error",
  ...options,
  async fn() {
    const result = await run("producer.ts", ["--stdin", "--count", "3"], {}, "");
    assert.equal(result.code, 2);
    assert.match(result.stderr, /Invalid --count with --stdin/);
  },
});
