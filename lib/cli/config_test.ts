import assert from "node:assert/strict";
import { parseProducerArgs, parseWorkerArgs } from "./config.ts";
import { DEMO_QUEUE, parseDemoArgs, parseStatusArgs } from "./tools_config.ts";
import { UsageError } from "../core/errors.ts";
import { exitCodeOf } from "./main.ts";
import { DEFAULT_URL, redactUrl } from "../core/url.ts";

Deno.test("the defaults match the original scripts", () => {
  const worker = parseWorkerArgs([], {});
  assert.ok(worker !== "help");
  assert.equal(worker.url, DEFAULT_URL);
  assert.equal(worker.queue, "tareas_distribuidas");
  assert.equal(worker.prefetch, 1);
  assert.equal(worker.concurrency, 1);
  assert.equal(worker.timeScale, 1);
  assert.equal(worker.name, undefined, "the library names it <hostname>-<pid>");
  const producer = parseProducerArgs([], {});
  assert.ok(producer !== "help");
  assert.deepEqual([producer.count, producer.min, producer.max, producer.wait], [10, 1, 5, false]);
});

Deno.test("flags and AMQP_URL are read", () => {
  const worker = parseWorkerArgs(
    ["--queue", "q", "--concurrency", "4", "--time-scale", "0.1", "--task-timeout", "2.5"],
    { AMQP_URL: "amqp://u:p@h:1" },
  );
  assert.ok(worker !== "help");
  assert.deepEqual(
    [worker.url, worker.queue, worker.prefetch, worker.concurrency, worker.timeScale],
    ["amqp://u:p@h:1", "q", 4, 4, 0.1],
  );
  assert.equal(worker.taskTimeoutMs, 2500);
  assert.equal(parseProducerArgs(["--help"], {}), "help");
  assert.equal(parseWorkerArgs(["-h"], {}), "help");
});

Deno.test("bad flags are usage errors with one-line messages", async (t) => {
  const cases: [string[], RegExp, "worker" | "producer"][] = [
    [["--count", "-1"], /^Invalid --count "-1": expected a number from 0/, "producer"],
    [["--count", "1.5"], /^Invalid --count "1.5": expected a whole number/, "producer"],
    [["--min", "5", "--max", "1"], /--min must not exceed --max/, "producer"],
    [["--timeline", "x.svg"], /--timeline: it needs --wait/, "producer"],
    [["--nope"], /^Unknown option '--nope'; see --help$/, "producer"],
    [
      ["-count", "3"],
      /^Unknown option '-count': long options take two dashes, did you mean '--count'\?; see --help$/,
      "producer",
    ],
    [["-xyz"], /^Unknown option '-xyz': long options take two dashes; see --help$/, "worker"],
    [["extra"], /^Unexpected argument 'extra'/, "worker"],
    [["--prefetch", "1", "--concurrency", "2"], /must be at least --concurrency/, "worker"],
    [["--queue", "amq.x"], /^Invalid --queue "amq.x"/, "worker"],
    [["--name", " "], /^Invalid --name/, "worker"],
  ];
  for (const [args, message, which] of cases) {
    await t.step(`${which} ${args.join(" ")}`, () => {
      const parse = which === "worker" ? parseWorkerArgs : parseProducerArgs;
      assert.throws(() => parse(args, {}), (error: unknown) => {
        assert.ok(error instanceof UsageError);
        assert.equal(exitCodeOf(error), 2);
        assert.match(error.message, message);
        assert.ok(!error.message.includes("\n"), "one line");
        return true;
      });
    });
  }
  await t.step("AMQP_URL that is not amqp", () => {
    assert.throws(
      () => parseWorkerArgs([], { AMQP_URL: "http://u:secret@h" }),
      /Invalid AMQP_URL "http:\/\/u:\*\*\*@h": expected amqp/,
    );
  });
});

Deno.test("URLs are printed without their password", () => {
  assert.equal(redactUrl("amqp://guest:guest@127.0.0.1:5672"), "amqp://guest:***@127.0.0.1:5672");
  assert.equal(redactUrl("amqps://u:p%40ss@host/vhost"), "amqps://u:***@host/vhost");
  assert.equal(redactUrl("amqp://host:5672"), "amqp://host:5672");
  assert.equal(redactUrl("amqp://u:se:cret@ho st"), "amqp://u:***@ho st");
});

Deno.test("status and demo flags share the same parsing and checks", () => {
  const status = parseStatusArgs(["--json", "--queue", "q"], {});
  assert.ok(status !== "help");
  assert.deepEqual([status.queue, status.json, status.watch], ["q", true, false]);
  const demo = parseDemoArgs([], {});
  assert.ok(demo !== "help");
  assert.deepEqual([demo.workers, demo.count, demo.timeScale], [3, 10, 1]);
  assert.match(demo.queue, new RegExp(`^${DEMO_QUEUE}_[0-9a-f]{8}$`), "each run its own queue");
  assert.notEqual(demo.queue, (parseDemoArgs([], {}) as typeof demo).queue);
  assert.throws(() => parseDemoArgs(["--workers", "1"], {}), /Invalid --workers "1"/);
  assert.throws(() => parseDemoArgs(["--time-scale", "0"], {}), /needs tasks that take some time/);
  assert.throws(() => parseStatusArgs([], { AMQP_URL: "redis://x" }), /Invalid AMQP_URL/);
});
