/**
 * `deno task verify` run as a person runs it (deno.json's permissions, `AMQP_URL` only): a short
 * run passes and prints its report, `--json` parses, bad flags exit 2 with one line, Ctrl-C at a
 * terminal leaves nothing behind, and `--broker-restart` survives a kill -9 of its private node.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import amqp from "../lib/deps/amqplib.ts";
import { isNotFound, withChannel } from "../lib/core/broker_errors.ts";
import { eventsExchange } from "../lib/core/events.ts";
import { deadQueue } from "../lib/core/topology.ts";
import { canStartPrivateNode, processesMentioning } from "../lib/operate/local_broker.ts";
import {
  brokerUrl,
  freshQueue,
  run,
  type TaskName,
  TerminalChild,
  within,
} from "../testing/scenario.ts";

const options = { sanitizeOps: true, sanitizeResources: true };
// Not in the harness's list of the README's commands yet.
const VERIFY: TaskName = "verify";

/** The queues and exchange of `queue` that still exist, and the processes that mention it. */
async function leftovers(url: string, queue: string): Promise<string[]> {
  const connection = await amqp.connect(url);
  connection.on("error", () => {});
  try {
    const left: string[] = [];
    const exists = (check: (channel: amqp.Channel) => Promise<unknown>) =>
      withChannel(connection, check).then(
        () => true,
        (e) => isNotFound(e) ? false : Promise.reject(e),
      );
    for (const name of [queue, deadQueue(queue)]) {
      if (await exists((channel) => channel.checkQueue(name))) left.push(`queue ${name}`);
    }
    const exchange = eventsExchange(queue);
    if (await exists((channel) => channel.checkExchange(exchange))) {
      left.push(`exchange ${exchange}`);
    }
    for (const pid of await processesMentioning(queue)) left.push(`process ${pid}`);
    return left;
  } finally {
    await connection.close();
  }
}

Deno.test({
  name: "deno task verify: a short run with SIGKILLs exits 0, reports every figure, cleans up",
  ...options,
  async fn() {
    const url = await brokerUrl();
    const queue = freshQueue("verify");
    const result = await run(VERIFY, ["--tasks", "200", "--kills", "5", "--queue", queue], {
      AMQP_URL: url,
    });
    const output = result.stdout + result.stderr;
    assert.equal(result.code, 0, output);
    const report = result.stdout;
    assert.match(report, /^tareas verify: PASS$/m);
    assert.match(report, /^ {2}broker {8}RabbitMQ \d+\.\d+\.\d+/m);
    assert.match(report, /^ {2}tareas {8}\d+\.\d+\.\d+$/m);
    assert.match(report, /^ {2}run {11}200 tasks .*, 5 of 5 SIGKILLs$/m);
    assert.match(report, /^ {2}published {5}200, confirmed 200$/m);
    assert.match(report, /^ {2}completed {5}200$/m);
    assert.match(report, /^ {2}lost {10}0$/m);
    assert.match(report, /^ {2}run twice {5}(0|\d+: all explained \(.*\))$/m);
    assert.match(
      report,
      /^ {2}redelivery {4}after a SIGKILL: (p50 \d+ ms, p99 \d+ ms, max \d+ ms|none)/m,
    );
    assert.match(report, /^ {2}throughput {4}\d+ tasks\/s/m);
    assert.equal(output.match(/✗ SIGKILL verify-\d+ with task/g)?.length, 5, output);
    assert.deepEqual(await leftovers(url, queue), []);
  },
});

Deno.test({
  name: "deno task verify --json prints the whole report as JSON on stdout, and nothing else",
  ...options,
  async fn() {
    const url = await brokerUrl();
    const queue = freshQueue("verify");
    const result = await run(VERIFY, [
      ...["--tasks", "50", "--kills", "2", "--workers", "2", "--json", "--queue", queue],
    ], { AMQP_URL: url });
    assert.equal(result.code, 0, result.stdout + result.stderr);
    const report = JSON.parse(result.stdout);
    assert.equal(report.verdict.ok, true);
    assert.equal(report.verdict.published, 50);
    assert.equal(report.verdict.completed, 50);
    assert.deepEqual(report.verdict.lost, []);
    assert.equal(report.kills.length, 2);
    assert.equal(report.settings.queue, queue);
    assert.match(report.broker.version, /^\d+\.\d+\.\d+/);
    assert.deepEqual(await leftovers(url, queue), []);
  },
});

Deno.test({
  name: "deno task verify with a bad flag or value exits 2 with one line, before touching anything",
  ...options,
  async fn(t) {
    const url = await brokerUrl();
    const tried: [string[], RegExp][] = [
      [["--tasks", "0"], /^verify: Invalid --tasks "0": expected a number from 1 to 100000$/],
      [["--tasks", "ten"], /^verify: Invalid --tasks "ten"/],
      [["--kills", "-1"], /^verify: Invalid --kills "-1"/],
      [["--workers", "2.5"], /^verify: Invalid --workers "2.5": expected a whole number/],
      [["--duration-ms", "50-10"], /^verify: Invalid --duration-ms "50-10": expected MIN-MAX/],
      [["--duration-ms", "fast"], /^verify: Invalid --duration-ms "fast"/],
      [["--concurrency", "4", "--prefetch", "2"], /^verify: Invalid --prefetch "2": .* from 4 /],
      [["--broker-restart", "--cluster"], /^verify: Choose --broker-restart or --cluster/],
      [["--frobnicate"], /^verify: Unknown option '--frobnicate'/],
      [["-tasks", "5"], /^verify: Unknown option '-tasks': long options take two dashes/],
    ];
    for (const [args, message] of tried) {
      await t.step(args.join(" "), async () => {
        const queue = freshQueue("verify");
        const result = await run(VERIFY, [...args, "--queue", queue], { AMQP_URL: url });
        assert.equal(result.code, 2, result.stderr);
        assert.equal(result.stdout, "");
        assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
        assert.match(result.stderr.trim(), message);
        assert.deepEqual(await leftovers(url, queue), []);
      });
    }
  },
});

Deno.test({
  name: "deno task verify refuses a queue that exists (it deletes its queue): exit 2, the queue " +
    "and its task untouched",
  ...options,
  async fn() {
    const url = await brokerUrl();
    const queue = freshQueue("verify");
    const connection = await amqp.connect(url);
    try {
      const channel = await connection.createConfirmChannel();
      await channel.assertQueue(queue, { durable: true });
      channel.sendToQueue(queue, Buffer.from("someone's task"), { persistent: true });
      await channel.waitForConfirms();
      const result = await run(VERIFY, ["--queue", queue, "--tasks", "5"], { AMQP_URL: url });
      assert.equal(result.code, 2, result.stderr);
      assert.match(
        result.stderr.trim().split("\n").at(-1)!,
        /^verify: Queue ".*" already exists: verify needs a queue/,
      );
      assert.equal((await channel.checkQueue(queue)).messageCount, 1);
      await channel.deleteQueue(queue);
    } finally {
      await connection.close();
    }
  },
});

Deno.test({
  name: "deno task verify in a terminal: Ctrl-C mid-run exits 1, stops its workers, and deletes " +
    "its queue, dead-letter queue and events exchange",
  ...options,
  async fn() {
    const url = await brokerUrl();
    const queue = freshQueue("verify");
    await using terminal = await TerminalChild.start("verify", VERIFY, [
      ...["--tasks", "2000", "--duration-ms", "100-300", "--kills", "10", "--queue", queue],
    ], { AMQP_URL: url });
    await terminal.waitForLine(/✗ SIGKILL verify-\d+ with task/, 60_000);
    await terminal.kill("SIGINT");
    assert.equal((await terminal.exit(60_000)).code, 1, terminal.output());
    assert.doesNotMatch(terminal.raw, /Deno requests|Allow\?/, terminal.output());
    assert.ok(
      terminal.screen().some((line) => /^verify: Stopped before the end/.test(line)),
      terminal.output(),
    );
    assert.deepEqual(await leftovers(url, queue), []);
  },
});

Deno.test({
  name: "deno task verify --broker-restart: kill -9 of its private node mid-run, nothing lost",
  // Needs rabbitmq-server installed to start a node it may kill (CI installs it).
  ignore: !await canStartPrivateNode(),
  ...options,
  async fn() {
    const result = await within(
      run(VERIFY, ["--broker-restart", "--tasks", "200", "--kills", "3"], {}),
      300_000,
      "verify --broker-restart",
    );
    const output = result.stdout + result.stderr;
    assert.equal(result.code, 0, output);
    assert.match(result.stdout, /^tareas verify: PASS$/m);
    assert.match(result.stdout, /^ {2}kill -9 {7}the broker at [\d.]+ s, back after [\d.]+ s$/m);
    assert.match(result.stdout, /^ {2}lost {10}0$/m);
    assert.match(result.stdout, /a private node started for this run/);
  },
});
