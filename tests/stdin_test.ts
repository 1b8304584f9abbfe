/**
 * `deno task produce --stdin`: one task per JSON line, the line's value being its payload.
 */
import assert from "node:assert/strict";
import { createWorker, type Task } from "../mod.ts";
import { decodeTask } from "../lib/core/task.ts";
import { run, Scenario, within } from "../testing/scenario.ts";

const options = { sanitizeOps: true, sanitizeResources: true };

/**
 * `deno task produce ...args` from the repository root, as {@linkcode run} runs it, with `input`
 * as raw bytes on standard input (`run` takes text, and text cannot hold invalid UTF-8).
 */
async function produceBytes(
  args: string[],
  env: Record<string, string>,
  input: Uint8Array,
): Promise<{ code: number; stderr: string }> {
  const inherited = Deno.env.toObject();
  for (const name of ["AMQP_URL", "LOG_LEVEL", "LOG_FORMAT"]) delete inherited[name];
  const child = new Deno.Command(Deno.execPath(), {
    args: ["task", "produce", ...args],
    cwd: new URL("../", import.meta.url).pathname,
    clearEnv: true,
    env: { ...inherited, ...env },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(input);
  await writer.close();
  const { code, stderr } = await child.output();
  // Without the line `deno task` prints first (`Task produce deno run ...`).
  const [banner, ...rest] = new TextDecoder().decode(stderr).split("\n");
  return {
    code,
    stderr: banner!.includes("Task") ? rest.join("\n") : [banner, ...rest].join("\n"),
  };
}

/** Asserts exactly one line on stderr (so no stack trace), matching `pattern`. */
function assertOneLine(stderr: string, pattern: RegExp): void {
  const lines = stderr.trim().split("\n");
  assert.equal(lines.length, 1, `one line on stderr:\n${stderr}`);
  assert.match(lines[0]!, pattern);
}

/** The payloads of the tasks in the queue, in order (consumed). */
async function payloads(scenario: Scenario): Promise<unknown[]> {
  const found: unknown[] = [];
  for (;;) {
    const message = await scenario.channel.get(scenario.queue, { noAck: true });
    if (message === false) return found;
    found.push(decodeTask(message.content, 64 * 1024 * 1024).payload);
  }
}

Deno.test({
  name: "produce --stdin enqueues one task per JSON line with that line's value as payload",
  ...options,
  async fn() {
    await using scenario = await Scenario.open();
    const lines = ['{"image":"a.png","width":100}', "", '"just a string"', "[1,2,3]"];
    const result = await run(
      "produce",
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
      "produce",
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
    const result = await run("produce", ["--stdin", "--count", "3"], {}, "");
    assert.equal(result.code, 2);
    assert.match(result.stderr, /Invalid --count with --stdin/);
  },
});

Deno.test({
  name: "produce --stdin refuses a line that is not UTF-8, naming it: exit 2, and the tasks " +
    "before it confirmed",
  ...options,
  async fn() {
    await using scenario = await Scenario.open();
    // Tried: a first line with a byte order mark, then a JSON string holding the bytes FF FE
    // (not UTF-8: they used to become U+FFFD, changing the data), then a valid line never read.
    const input = new Uint8Array([
      ...new TextEncoder().encode('\ufeff{"ok":1}\n{"b":"'),
      0xff,
      0xfe,
      ...new TextEncoder().encode('"}\n{"ok":3}\n'),
    ]);
    const result = await produceBytes(
      ["--queue", scenario.queue, "--stdin"],
      { AMQP_URL: scenario.url, LOG_LEVEL: "warning" },
      input,
    );
    assert.equal(result.code, 2, result.stderr);
    assertOneLine(
      result.stderr,
      /^producer: Line 2 of standard input is not UTF-8; 1 task\(s\) before it were published and confirmed$/,
    );
    assert.deepEqual(
      await payloads(scenario),
      [{ ok: 1 }],
      "the first line only, its mark dropped",
    );
    scenario.pass();
  },
});

Deno.test({
  name: "produce --stdin refuses a line nested 100,000 deep in one line: exit 2, and the tasks " +
    "before it confirmed",
  ...options,
  async fn() {
    await using scenario = await Scenario.open();
    // Tried: a valid line, then an array nested 100,000 deep (it used to end in a stack
    // trace and no count), then a valid line never read.
    const deep = "[".repeat(100_000) + "]".repeat(100_000);
    const result = await run(
      "produce",
      ["--queue", scenario.queue, "--stdin"],
      { AMQP_URL: scenario.url, LOG_LEVEL: "warning" },
      `{"ok":1}\n${deep}\n{"ok":3}\n`,
    );
    assert.equal(result.code, 2, result.stderr);
    assertOneLine(
      result.stderr,
      /^producer: Line 2 of standard input nests deeper than 1000 levels; 1 task\(s\) before it were published and confirmed$/,
    );
    assert.deepEqual(await payloads(scenario), [{ ok: 1 }]);
    scenario.pass();
  },
});

Deno.test({
  name: "produce --stdin publishes a multi-megabyte line and a line nested 1,000 deep intact",
  ...options,
  async fn() {
    await using scenario = await Scenario.open();
    // Tried: a 3 MB line whose characters of 1 to 4 bytes fall across every read boundary, and
    // the deepest nesting accepted. Under the 4 MiB max_message_size of compose.yaml.
    const text = "aé€😀".repeat(300_000);
    const big = { blob: text, tail: [1, 2, 3] };
    const deep = JSON.parse("[".repeat(1_000) + "]".repeat(1_000));
    const input = `${JSON.stringify(big)}\r\n${JSON.stringify(deep)}`; // CRLF, no final newline.
    assert.ok(new TextEncoder().encode(input).byteLength > 3_000_000);
    const result = await run(
      "produce",
      ["--queue", scenario.queue, "--stdin"],
      { AMQP_URL: scenario.url, LOG_LEVEL: "warning" },
      input,
    );
    assert.equal(result.code, 0, result.stderr);
    const [first, second, ...rest] = await payloads(scenario);
    assert.deepEqual(rest, []);
    assert.equal((first as typeof big).blob === text, true, "the 3 MB string intact");
    assert.deepEqual(first, big);
    assert.deepEqual(second, deep);
    scenario.pass();
  },
});

Deno.test({
  name: "produce --stdin escapes what it echoes of a line that is not JSON",
  ...options,
  async fn() {
    await using scenario = await Scenario.open();
    // Tried: a line holding an ESC sequence that clears the screen, and a bidi override.
    const result = await run(
      "produce",
      ["--queue", scenario.queue, "--stdin"],
      { AMQP_URL: scenario.url, LOG_LEVEL: "warning" },
      '{"x":\x1b[2J\u202e}\n',
    );
    assert.equal(result.code, 2, result.stderr);
    assertOneLine(result.stderr, /^producer: Line 1 of standard input is not JSON \(.*\\x1b\[2J/);
    assert.ok(!result.stderr.includes("\x1b"), "no raw ESC");
    assert.ok(!result.stderr.includes("\u202e"), "no raw bidi override");
    scenario.pass();
  },
});
