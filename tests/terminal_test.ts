/**
 * The long-running commands in a pseudo-terminal, as a person runs them (`script -qfec "deno task
 * ..."`): what they see first (no permission prompt, the line that says the command is ready, a
 * progress bar that no log line lands in), and Ctrl-C, which stops each with its documented exit
 * code. `deno task work` with a task in hand is in tests/graceful_stop_test.ts.
 */
import assert from "node:assert/strict";
import { declareTopology } from "../lib/core/topology.ts";
import { freshQueue, Scenario, screenLines, TerminalChild } from "../testing/scenario.ts";

const options = { sanitizeOps: true, sanitizeResources: true };

/** Asserts that Deno never asked for a permission on `terminal`. */
function assertNoPrompt(terminal: TerminalChild): void {
  assert.doesNotMatch(terminal.raw, /Deno requests|Allow\?/, terminal.output());
}

Deno.test({
  name: "deno task work in a terminal: no prompt, it says it consumes, Ctrl-C exits 0",
  ...options,
  async fn() {
    await using scenario = await Scenario.open();
    await using worker = await TerminalChild.start("work", "work", [
      ...["--queue", scenario.queue, "--name", "typed"],
    ], { AMQP_URL: scenario.url });
    await worker.waitForLine(new RegExp(`Worker typed consuming ${scenario.queue}`));
    await scenario.waitForEvent((e) => e.type === "worker.online", "worker.online");
    await worker.kill("SIGINT");
    assert.equal((await worker.exit()).code, 0, worker.output());
    assertNoPrompt(worker);
    await scenario.waitForEvent((e) => e.type === "worker.offline", "worker.offline");
    scenario.pass();
  },
});

/** A line of the progress bar drawn on a terminal: `[░░░░░░░░░░] 0/3 completed ...`. */
const BAR = /\[[█░]+\] \d+\/\d+ completed/;
/** A text log line: `12:34:56.789 [WRN] tareas·producer: ...`. */
const LOG = /\d\d:\d\d:\d\d\.\d{3} \[[A-Z]{3}\] /;

Deno.test({
  name: "deno task produce --wait in a terminal with no worker: a progress bar, and the warning " +
    "that nothing consumes on a line of its own; Ctrl-C exits 1",
  ...options,
  async fn() {
    // Tried: the warning was written after the bar on the same terminal line
    // ("... 0.0/s  ETA ?21:16:17.354 [WRN] tareas·producer: Nothing is consuming ...").
    await using scenario = await Scenario.open();
    await using producer = await TerminalChild.start("produce --wait", "produce", [
      ...["--queue", scenario.queue, "--count", "3", "--wait"],
    ], { AMQP_URL: scenario.url });
    await producer.waitForLine(/Published 3 task\(s\) .*all confirmed by the broker/);
    await producer.waitForLine(BAR);
    const warning = await producer.waitForLine(/Nothing is consuming /, 10_000);
    assert.match(warning, new RegExp(`^${LOG.source}tareas·producer: Nothing is consuming`));
    await producer.kill("SIGINT");
    assert.equal((await producer.exit()).code, 1, producer.output());
    assertNoPrompt(producer);
    const mixed = producer.screen().filter((line) => BAR.test(line) && LOG.test(line));
    assert.deepEqual(mixed, [], "no log line shares a terminal line with the bar");
    assert.ok(producer.screen().some((line) => BAR.test(line)), producer.output());
    scenario.pass();
  },
});

Deno.test({
  name: "deno task status --watch in a terminal: no prompt, the first screen shows the queue, " +
    "Ctrl-C exits 0",
  ...options,
  async fn() {
    await using scenario = await Scenario.open();
    await declareTopology(scenario.channel, scenario.queue);
    await using status = await TerminalChild.start("status --watch", "status", [
      ...["--watch", "--queue", scenario.queue],
    ], { AMQP_URL: scenario.url });
    await status.waitForLine(new RegExp(scenario.queue));
    await status.waitForLine(/no worker seen/);
    await status.waitForLine(/\(Ctrl-C to quit\)/);
    await status.kill("SIGINT");
    assert.equal((await status.exit()).code, 0, status.output());
    assertNoPrompt(status);
    scenario.pass();
  },
});

Deno.test({
  name: "deno task dashboard in a terminal: no prompt, it prints its address, which serves the " +
    "page; Ctrl-C exits 0",
  ...options,
  async fn() {
    await using scenario = await Scenario.open();
    await declareTopology(scenario.channel, scenario.queue);
    await using dashboard = await TerminalChild.start("dashboard", "dashboard", [
      ...["--queue", scenario.queue, "--port", "0"],
    ], { AMQP_URL: scenario.url });
    const line = await dashboard.waitForLine(/^dashboard: http:\/\/127\.0\.0\.1:\d+\/#token=\S+$/);
    const response = await fetch(line.replace("dashboard: ", ""));
    assert.equal(response.status, 200);
    assert.match(await response.text(), /<html/i);
    await dashboard.kill("SIGINT");
    assert.equal((await dashboard.exit()).code, 0, dashboard.output());
    assertNoPrompt(dashboard);
    scenario.pass();
  },
});

Deno.test({
  name: "deno task demo in a terminal: no prompt, it names its broker and starts its workers; " +
    "Ctrl-C stops it with exit 1 and deletes its queue",
  ...options,
  async fn() {
    await using scenario = await Scenario.open(); // For its broker URL and a channel.
    const queue = freshQueue("demo");
    await using demo = await TerminalChild.start("demo", "demo", ["--queue", queue], {
      AMQP_URL: scenario.url,
    });
    await demo.waitForLine(/^\[demo\] broker: amqp:\/\/guest:\*\*\*@/, 30_000);
    await demo.waitForLine(/^\[demo\] worker-\d online/, 30_000);
    await demo.kill("SIGINT");
    assert.equal((await demo.exit()).code, 1, demo.output());
    assertNoPrompt(demo);
    assert.ok(
      demo.screen().some((l) => l === "[demo] Ctrl-C: stopping the workers, then the broker"),
      demo.output(),
    );
    assert.equal(await scenario.queueExists(queue), false, "the demo deleted its queue");
    scenario.pass();
  },
});

Deno.test({
  name: "screenLines shows what a terminal shows: a carriage return overwrites, ESC [2K erases",
  fn() {
    const bar = "[░░] 0/3 completed";
    assert.deepEqual(screenLines(`${bar}\r\x1b[2Kwarning\n${bar}`), ["warning", bar]);
    assert.deepEqual(screenLines(`${bar}12:00 [WRN] x\n`), [`${bar}12:00 [WRN] x`]);
    assert.deepEqual(screenLines("abcdef\rxy\x1b[K\n\x1b[32mok\x1b[0m\r\n"), ["xy", "ok"]);
  },
});
