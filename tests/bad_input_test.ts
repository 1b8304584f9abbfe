import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import amqp from "../lib/deps/amqplib.ts";
import { isNotFound, withChannel } from "../lib/core/broker_errors.ts";
import { brokerUrl, freshQueue, run, type TaskName } from "../testing/scenario.ts";

const options = { sanitizeOps: true, sanitizeResources: true };

/** Asserts that a command failed with `code` and exactly one line on stderr matching `pattern`. */
function assertOneLine(
  result: { code: number; stdout: string; stderr: string },
  code: number,
  pattern: RegExp,
): void {
  const lines = result.stderr.trim().split("\n");
  assert.equal(result.code, code, `exit code; stderr:\n${result.stderr}`);
  assert.equal(lines.length, 1, `one line on stderr, got:\n${result.stderr}`);
  assert.match(lines[0]!, pattern);
  assert.doesNotMatch(result.stderr, /\n\s+at /, "no stack trace");
}

Deno.test({
  name: "bad flags get one line and exit 2, and publish nothing",
  ...options,
  async fn(t) {
    const url = await brokerUrl();
    const queue = freshQueue("bad-flags");
    const cases: [TaskName, string[], RegExp][] = [
      ["produce", ["--bogus"], /producer: Unknown option '--bogus'; see --help/],
      ["produce", ["--count", "-1"], /Invalid --count "-1"/],
      ["produce", ["--min", "5", "--max", "1"], /--min must not exceed --max/],
      ["produce", ["--count", "ten"], /Invalid --count "ten"/],
      ["work", ["--prefetch", "0"], /Invalid --prefetch "0"/],
      ["work", ["--time-scale", "-1"], /Invalid --time-scale "-1"/],
      ["work", ["--handler", "./no_such_handler.ts"], /Cannot load --handler/],
      ["migrate", ["--batch", "0"], /migrate: Invalid --batch "0"/],
    ];
    for (const [task, args, pattern] of cases) {
      await t.step(`deno task ${task} ${args.join(" ")}`, async () => {
        const result = await run(task, ["--queue", queue, ...args], { AMQP_URL: url });
        assertOneLine(result, 2, pattern);
      });
    }
    await t.step("no queue was even declared", async () => {
      const connection = await amqp.connect(url);
      try {
        const error = await withChannel(connection, (channel) => channel.checkQueue(queue))
          .catch((e: unknown) => e);
        assert.ok(isNotFound(error), String(error));
      } finally {
        await connection.close();
      }
    });
  },
});

Deno.test({
  name: "a queue declared classic by the original scripts is reported, not touched",
  ...options,
  async fn(t) {
    const url = await brokerUrl();
    const queue = freshQueue("classic");
    const connection = await amqp.connect(url);
    const channel = await connection.createConfirmChannel();
    await channel.assertQueue(queue, { durable: true });
    channel.sendToQueue(queue, Buffer.from('{"from":"pika"}'), { persistent: true });
    await channel.waitForConfirms();
    try {
      for (const task of ["work", "produce"] as const) {
        await t.step(`deno task ${task}`, async () => {
          const result = await run(task, ["--queue", queue], { AMQP_URL: url });
          // The count needs the worker and producer to hand declareTopology their connection.
          assertOneLine(
            result,
            2,
            new RegExp(
              `Cannot declare queue "${queue}": it is a classic queue holding 1 message and ` +
                `tareas needs a quorum queue; .*: deno task migrate --queue ${queue}$`,
            ),
          );
        });
      }
      await t.step("the classic queue still holds its one message and nothing else", async () => {
        assert.equal((await channel.checkQueue(queue)).messageCount, 1);
      });
    } finally {
      await channel.deleteQueue(queue);
      await connection.close();
    }
  },
});

Deno.test({
  name: "refused credentials get one line without the password and exit 2",
  ...options,
  async fn() {
    const url = new URL(await brokerUrl());
    url.password = "not-the-S3CRET";
    const result = await run("produce", ["--count", "1"], { AMQP_URL: url.href });
    assertOneLine(result, 2, /refused the credentials of user "guest"/);
    assert.doesNotMatch(result.stderr + result.stdout, /S3CRET/);
    assert.match(result.stderr, /guest:\*\*\*@/);
  },
});

Deno.test({
  name: "an unreachable broker is retried a bounded number of times, then exit 1",
  ...options,
  async fn() {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = listener.addr.port;
    listener.close();
    const result = await run("work", [], {
      AMQP_URL: `amqp://guest:hunter2-S3CRET@127.0.0.1:${port}`,
      LOG_LEVEL: "error",
    });
    assertOneLine(
      result,
      1,
      new RegExp(
        `Cannot reach the broker at amqp://guest:\\*\\*\\*@127.0.0.1:${port}: connection refused`,
      ),
    );
    assert.doesNotMatch(result.stderr + result.stdout, /S3CRET/);
  },
});
