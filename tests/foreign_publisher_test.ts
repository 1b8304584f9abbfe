/**
 * Tasks enqueued by other programs: the message format docs/other_languages.md documents is all a
 * publisher needs. Published here with plain amqplib (not tareas' encoder) and with that page's
 * own Python example, and run by a tareas worker.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import amqp from "../lib/deps/amqplib.ts";
import { createWorker, type Task } from "../mod.ts";
import { Scenario, within } from "../testing/scenario.ts";

const options = { sanitizeOps: true, sanitizeResources: true };

/** Resolves with the first task a fresh in-process worker on the scenario's queue handles. */
async function firstTask(scenario: Scenario, publish: () => Promise<unknown>): Promise<Task> {
  const handled = Promise.withResolvers<Task>();
  const worker = await createWorker({
    url: scenario.url,
    queue: scenario.queue,
    name: "foreign-reader",
    handler: (task) => handled.resolve(task),
  });
  try {
    await publish();
    return await within(handled.promise, 15_000, "the worker to run the foreign task");
  } finally {
    await worker.close();
  }
}

Deno.test({
  name: "a task published with plain amqplib in the documented format runs with its payload",
  ...options,
  async fn() {
    await using scenario = await Scenario.open();
    const payload = { image: "cat.png", width: 200, tags: ["pets", "ñ"] };
    const task = await firstTask(scenario, async () => {
      const connection = await amqp.connect(scenario.url);
      try {
        const channel = await connection.createConfirmChannel();
        await channel.checkQueue(scenario.queue); // Declared by the worker: never redeclare it.
        const body = {
          id: "order-42",
          createdAt: new Date().toISOString(),
          payload,
        };
        channel.sendToQueue(scenario.queue, Buffer.from(JSON.stringify(body)), {
          persistent: true,
          messageId: body.id,
          contentType: "application/json",
        });
        await channel.waitForConfirms();
      } finally {
        await connection.close();
      }
    });
    assert.equal(task.id, "order-42");
    assert.deepEqual(task.payload, payload);
    assert.equal(task.seq, 0);
    await scenario.waitForEvent((e) => e.type === "task.completed", "task.completed");
    assert.equal(await scenario.ready(), 0);
    scenario.pass();
  },
});

const PYTHON = "/usr/bin/python3";

/** Whether Debian's Python with pika is installed (CI installs python3-pika). */
async function hasPika(): Promise<boolean> {
  try {
    const { success } = await new Deno.Command(PYTHON, { args: ["-c", "import pika"] }).output();
    return success;
  } catch {
    return false;
  }
}

/** The first ```python block of docs/other_languages.md ("Enqueue from another language"). */
async function documentedPython(): Promise<string> {
  const page = await Deno.readTextFile(new URL("../docs/other_languages.md", import.meta.url));
  const match = /```python\n([\s\S]*?)```/.exec(page);
  assert.ok(match, "docs/other_languages.md has a Python example");
  return match[1]!;
}

Deno.test({
  name: "the documented Python example enqueues a task a tareas worker runs",
  // Needs Debian's python3-pika (CI installs it); PyPI is not reachable from these machines.
  ignore: !await hasPika(),
  ...options,
  async fn() {
    await using scenario = await Scenario.open();
    const code = await documentedPython();
    let printed = "";
    const task = await firstTask(scenario, async () => {
      const result = await new Deno.Command(PYTHON, {
        args: ["-c", code],
        env: { AMQP_URL: scenario.url, QUEUE: scenario.queue },
        stdin: "null",
      }).output();
      printed = new TextDecoder().decode(result.stdout).trim();
      assert.equal(result.code, 0, new TextDecoder().decode(result.stderr));
    });
    assert.equal(printed, `enqueued ${task.id}`);
    assert.deepEqual(task.payload, { image: "cat.png", width: 200 });
    scenario.pass();
  },
});
