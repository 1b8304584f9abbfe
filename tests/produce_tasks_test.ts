/**
 * The command lines of named tasks, delays, results and progress, run as the README gives them:
 * `deno task work --handler` with handlers by name, `deno task produce --name`, `--delay`,
 * `--stdin` lines `NAME<TAB>JSON`, `--wait --results FILE`, and the progress `produce --wait` and
 * `status --watch` show; and each of their bad inputs: one line, exit 2, no task lost.
 */
import assert from "node:assert/strict";
import type { TaskEvent } from "../lib/core/events.ts";
import { Child, run, Scenario } from "../testing/scenario.ts";

const options = { sanitizeOps: true, sanitizeResources: true };

const ROOT = new URL("../", import.meta.url).pathname;

/** A `--results` file: `deno task produce` may only write under the project's directory. */
async function resultsFile(): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempFile({ dir: ROOT, prefix: "results-test-", suffix: ".jsonl" });
  return { path, [Symbol.asyncDispose]: () => Deno.remove(path) };
}

/** The lines of a `--results` file, parsed, by task id. */
async function readResults(path: string): Promise<Map<string, Record<string, unknown>>> {
  const text = await Deno.readTextFile(path);
  const lines = text.split("\n").filter((line) => line !== "").map((line) => JSON.parse(line));
  return new Map(lines.map((line) => [line.id, line]));
}

/** Asserts exactly one line on stderr (no stack trace), matching `pattern`. */
function assertOneLine(stderr: string, pattern: RegExp): void {
  const lines = stderr.trim().split("\n");
  assert.equal(lines.length, 1, `one line on stderr:\n${stderr}`);
  assert.match(lines[0]!, pattern);
}

Deno.test({
  name: "a --handler module of handlers by name serves --stdin lines NAME<TAB>JSON and --name; " +
    "--results has each task's result, or the reason it is dead",
  ...options,
  async fn(t) {
    await using scenario = await Scenario.open();
    await scenario.startWorker("named", ["--handler", "tests/handlers/named.ts"]);
    await using file = await resultsFile();
    const args = ["--queue", scenario.queue, "--wait", "--timeout", "60", "--results", file.path];
    const env = { AMQP_URL: scenario.url, LOG_LEVEL: "warning" };

    await scenario.step(t, "stdin: each name reaches its handler, unknown ones die", async () => {
      // A name with a handler, another, a line without a name ("default": none in named.ts), and
      // a name no handler knows.
      const input = 'resize\t{"image":"a.png"}\nemail\t{"to":"ana"}\n{"plain":1}\nfax\t{"n":1}\n';
      const result = await run("produce", [...args, "--stdin"], env, input);
      assert.equal(result.code, 3, `${result.stdout}${result.stderr}`);
      const results = [...(await readResults(file.path)).values()];
      assert.equal(results.length, 4, JSON.stringify(results));
      const outcome = (status: string, key: string) =>
        results.filter((r) => r.status === status).map((r) => JSON.stringify(r[key])).sort();
      assert.deepEqual(outcome("completed", "result"), [
        '{"resized":{"image":"a.png"}}',
        '{"sent":{"to":"ana"}}',
      ]);
      assert.deepEqual(outcome("dead", "reason"), [
        '"no handler for task \\"default\\""',
        '"no handler for task \\"fax\\""',
      ]);
    });

    await scenario.step(t, "--name: every task of the run has that name", async () => {
      const result = await run("produce", [...args, "--count", "2", "--name", "resize"], env);
      assert.equal(result.code, 0, `${result.stdout}${result.stderr}`);
      const results = [...(await readResults(file.path)).values()];
      assert.deepEqual(results.map((r) => [r.status, r.result]), [
        ["completed", { resized: null }],
        ["completed", { resized: null }],
      ]);
    });
    scenario.pass();
  },
});

Deno.test({
  name: "produce --delay S: the task waits in the broker, not in the queue, and starts no " +
    "earlier than S seconds after it was published",
  ...options,
  async fn() {
    await using scenario = await Scenario.open();
    const before = Date.now();
    await scenario.produce(["--count", "1", "--min", "0", "--max", "0", "--delay", "3"]);
    assert.equal(await scenario.ready(), 0, "not in the work queue while it waits");
    await scenario.startWorker("later", ["--time-scale", "0"]);
    // A task that ends within 10 ms has no task.started: its start is its end less its run.
    const completed = await scenario.waitForEvent<TaskEvent>(
      (e) => e.type === "task.completed",
      "the delayed task to complete",
      20_000,
    );
    const waited = Date.parse(completed.at) - (completed.durationMs ?? 0) - before;
    assert.ok(waited >= 3000, `started ${waited} ms after the producer was run, before 3 s`);
    scenario.pass();
  },
});

Deno.test({
  name: "the progress a running task reports shows in produce --wait and status --watch; its " +
    "result goes to --results",
  ...options,
  async fn(t) {
    await using scenario = await Scenario.open();
    const env = { AMQP_URL: scenario.url };
    // The worker declares the queue first (tried: a status started before it saw the work queue
    // declared and its dead-letter queue not yet, and exited); then status, before any task: it
    // sees a task run only if it hears the task's events.
    await scenario.startWorker("gauge", ["--handler", "tests/handlers/reports_progress.ts"]);
    const status = new Child("status", "status", ["--queue", scenario.queue, "--watch"], env);
    scenario.children.push(status);
    // Listening once it has heard of the worker.
    await status.waitForLine(/^ {2}gauge +online /);
    await using file = await resultsFile();
    const producer = scenario.spawnProducer([
      ...["--stdin", "--wait", "--timeout", "60", "--results", file.path],
    ]);
    // One step held 6 s: longer than the 2 s between progress lines when not at a terminal.
    await producer.write(`${JSON.stringify({ steps: [0.4], holdMs: 6_000 })}\n`);
    await producer.closeInput();

    await scenario.step(t, "produce --wait: its progress line names the task at 40%", async () => {
      await producer.waitForLine(/^progress: 0\/1 completed, .*, running: #1 40%$/, 20_000);
    });
    await scenario.step(t, "status --watch: the task under its worker, at 40%", async () => {
      await status.waitForLine(/^ {6}task #1 40%$/, 20_000);
    });
    await scenario.step(t, "it completes: exit 0, its result in the file", async () => {
      const exit = await producer.exit(30_000);
      assert.equal(exit.code, 0, producer.output());
      const results = [...(await readResults(file.path)).values()];
      assert.deepEqual(results.map((r) => [r.status, r.result]), [["completed", { steps: 1 }]]);
    });
    scenario.pass();
  },
});

Deno.test({
  name: "bad --name, --delay out of range and --results without --wait: one line, exit 2, " +
    "nothing published",
  ...options,
  async fn() {
    await using scenario = await Scenario.open();
    const tried: [string[], RegExp][] = [
      [["--name", "two words"], /^producer: Invalid --name "two words": expected 1 to 200 /],
      [["--name", ""], /^producer: Invalid --name "": expected 1 to 200 characters/],
      [["--name", '{"a":1}'], /^producer: Invalid --name "\{"a":1\}": .*not starting with \{/],
      [["--name", "x".repeat(201)], /^producer: Invalid --name "x+": expected 1 to 200/],
      [["--name", "é".repeat(130)], /^producer: Invalid --name "é+": 260 bytes as UTF-8/],
      [["--delay", "-1"], /^producer: Invalid --delay "-1": expected a number from 0 to /],
      [["--delay", "4000000"], /^producer: Invalid --delay "4000000": expected a number from 0/],
      [["--delay", "soon"], /^producer: Invalid --delay "soon": expected a number/],
      [["--results", "out.jsonl"], /^producer: Invalid --results: it needs --wait$/],
    ];
    for (const [args, pattern] of tried) {
      const result = await run("produce", ["--queue", scenario.queue, ...args], {
        AMQP_URL: scenario.url,
      });
      assert.equal(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
      assertOneLine(result.stderr, pattern);
    }
    assert.equal(await scenario.queueExists(scenario.queue), false, "nothing was published");
    scenario.pass();
  },
});

Deno.test({
  name: "produce --stdin stops at a line with a bad name: one line naming it, exit 2, and the " +
    "tasks before it confirmed",
  ...options,
  async fn() {
    await using scenario = await Scenario.open();
    // Tried: a named line, then a name with a space before the tab, then a line never read.
    const input = 'resize\t{"image":"a.png"}\nbad name\t{"n":2}\nemail\t{"n":3}\n';
    const result = await run(
      "produce",
      ["--queue", scenario.queue, "--stdin"],
      { AMQP_URL: scenario.url, LOG_LEVEL: "warning" },
      input,
    );
    assert.equal(result.code, 2, result.stderr);
    assertOneLine(
      result.stderr,
      /^producer: Line 2 of standard input has an invalid task name before its tab \(expected 1 to 200 characters without spaces, not starting with \{ or \[\); 1 task\(s\) before it were published and confirmed$/,
    );
    const message = await scenario.channel.get(scenario.queue, { noAck: true });
    assert.ok(message !== false, "the first line's task is in the queue");
    assert.equal(message.properties.type, "resize", "with its name as the message's type");
    assert.equal(await scenario.ready(), 0, "and only it");
    scenario.pass();
  },
});

Deno.test({
  name: "work --handler whose default export has a value that is not a function: one line, " +
    "exit 2, naming it",
  ...options,
  async fn() {
    await using scenario = await Scenario.open();
    const result = await run(
      "work",
      ["--queue", scenario.queue, "--handler", "tests/handlers/not_handlers.ts"],
      { AMQP_URL: scenario.url },
    );
    assert.equal(result.code, 2, result.stderr);
    assertOneLine(
      result.stderr,
      /^worker: Invalid --handler "tests\/handlers\/not_handlers.ts": its default export must be a function, or an object of functions by task name; "email" is a string$/,
    );
    assert.equal(await scenario.queueExists(scenario.queue), false, "it never connected");
    scenario.pass();
  },
});
