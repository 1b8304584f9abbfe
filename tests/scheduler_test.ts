/**
 * Periodic tasks against the real broker, `deno task schedule` run as the README gives it: three
 * schedulers on a one-second schedule with the leader SIGKILLed midway, a broker crash and
 * restart, a terminal's Ctrl-C, and bad schedule files. Ticks are read from the tasks themselves
 * (their ids, `<schedule id>@<tick>`), consumed from the work queue by the test.
 * @module
 */
import assert from "node:assert/strict";
import type { ConsumeMessage } from "../lib/deps/amqplib.ts";
import { delay } from "../lib/core/async.ts";
import { canStartPrivateNode, startPrivateNode } from "../lib/operate/local_broker.ts";
import { leaseQueue } from "../lib/operate/scheduler.ts";
import {
  brokerUrl,
  Child,
  freshQueue,
  run,
  Scenario,
  type TaskName,
  TerminalChild,
} from "../testing/scenario.ts";

const options = { sanitizeOps: true, sanitizeResources: true };

// `deno task schedule` is a README command like the others; the harness's list predates it.
const SCHEDULE: TaskName = "schedule";

const EVERY_SECOND = { id: "every-second", cron: "* * * * * *", name: "tick" };

const files = Deno.makeTempDirSync({ prefix: "tareas-schedules-" });
globalThis.addEventListener("unload", () => Deno.removeSync(files, { recursive: true }));

/** Writes a schedule file to a temporary directory and returns its path. */
async function scheduleFile(content: unknown): Promise<string> {
  const path = `${files}/${crypto.randomUUID()}.json`;
  await Deno.writeTextFile(path, typeof content === "string" ? content : JSON.stringify(content));
  return path;
}

/** Starts `deno task schedule --file FILE --queue Q` and waits until it is connected. */
async function startScheduler(scenario: Scenario, name: string, file: string): Promise<Child> {
  const child = new Child(name, SCHEDULE, ["--file", file, "--queue", scenario.queue], {
    AMQP_URL: scenario.url,
  });
  scenario.children.push(child);
  await child.waitForLine(/standing by for the lease/);
  return child;
}

/** The tick of each task (from its id), asserting that each is a task of `scheduleId`. */
function ticksOf(messages: ConsumeMessage[], scheduleId: string): number[] {
  return messages.map(({ properties, content }) => {
    const [id, tick] = String(properties.messageId).split("@");
    assert.equal(id, scheduleId, `a task of the schedule: ${properties.type} ${content}`);
    return Date.parse(tick!);
  });
}

/** Asserts one task per tick: no id twice, and each tick one second after the one before. */
function assertOnePerTick(ticks: number[], allowedGaps: { at: number; upTo: number }[] = []) {
  const sorted = [...ticks].sort((a, b) => a - b);
  assert.equal(new Set(sorted).size, sorted.length, "no tick was enqueued twice");
  for (let i = 1; i < sorted.length; i++) {
    const step = sorted[i]! - sorted[i - 1]!;
    const allowed = allowedGaps.find((g) => sorted[i - 1]! <= g.at && g.at <= sorted[i]!);
    const limit = allowed?.upTo ?? 1_000;
    assert.ok(
      step === 1_000 || (allowed !== undefined && step <= limit && step % 1_000 === 0),
      `tick ${new Date(sorted[i]!).toISOString()} came ${step} ms after the one before`,
    );
  }
}

/** The first of `children` (less `exclude`) to print that it leads, waiting for one to. */
async function leader(children: Child[], exclude: Child[] = []): Promise<Child> {
  const candidates = children.filter((c) => !exclude.includes(c));
  return await Promise.any(candidates.map(async (c) => {
    await c.waitForLine(/Scheduler \S+ leads/, 10_000);
    return c;
  }));
}

Deno.test({
  name: "three schedulers on a one-second schedule, the leader SIGKILLed as a tick falls: one " +
    "task per tick, none twice, none missing but at most the tick of the kill",
  ...options,
  async fn(t) {
    await using scenario = await Scenario.open();
    const file = await scheduleFile({ schedules: [EVERY_SECOND] });
    const tasks = await scenario.collect(scenario.queue);
    const schedulers: Child[] = [];
    try {
      await scenario.step(t, "three schedulers connect; one leads and fires", async () => {
        for (const name of ["s1", "s2", "s3"]) {
          schedulers.push(await startScheduler(scenario, name, file));
        }
        await tasks.waitFor(3, "three ticks");
      });

      let killedAt = 0;
      let first: Child;
      await scenario.step(
        t,
        "15 ticks later, the leader is SIGKILLed as a tick falls",
        async () => {
          first = await leader(schedulers);
          const leading = schedulers.filter((c) => c.lines.some((l) => / leads /.test(l)));
          assert.equal(leading.length, 1, "exactly one scheduler leads");
          await tasks.waitFor(15, "15 ticks");
          // Aimed at the next whole second, when the leader wakes up to fire its tick: whether the
          // kill lands before, during or after the commit, the tick must be enqueued once.
          killedAt = Math.ceil(Date.now() / 1_000) * 1_000;
          await delay(killedAt - Date.now());
          first.kill("SIGKILL");
          assert.equal((await first.exit()).signal, "SIGKILL");
        },
      );

      await scenario.step(t, "a standby takes over and fires for 15 more seconds", async () => {
        const before = tasks.messages.length;
        const second = await leader(schedulers, [first]);
        console.log(`${second.name} leads ${Date.now() - killedAt} ms after the SIGKILL`);
        await tasks.waitFor(before + 15, "15 ticks after the kill", 30_000);
        const tick = new Date(killedAt).toISOString();
        const by = first.lines.some((l) => l.includes(`Fired every-second@${tick}`))
          ? `${first.name}, killed right after its commit`
          : second.name;
        console.log(`the tick of the kill, ${tick}, was fired by ${by}`);
        for (const child of schedulers.filter((c) => c !== first)) {
          child.kill("SIGTERM");
          assert.equal((await child.exit()).code, 0, `${child.name} exits 0 on SIGTERM`);
        }
      });

      await scenario.step(t, "one task per tick: no id twice, no gap but at the kill", () => {
        const ticks = ticksOf(tasks.messages, EVERY_SECOND.id);
        // The issue allows one missing tick at the kill; the lease's grace should leave none.
        assertOnePerTick(ticks, [{ at: killedAt, upTo: 2_000 }]);
        const sorted = [...ticks].sort((a, b) => a - b);
        const gap = sorted.findIndex((tick, i) => i > 0 && tick - sorted[i - 1]! > 1_000);
        console.log(
          `${ticks.length} ticks, ${gap === -1 ? "none missing" : "one missing at the kill"}`,
        );
      });
      scenario.pass();
    } finally {
      await scenario.channel.deleteQueue(leaseQueue(scenario.queue)).catch(() => {});
    }
  },
});

Deno.test({
  name: "a broker killed and restarted: the same schedulers go on, no tick twice, the last " +
    "missed tick fired late",
  // Needs rabbitmq-server installed to start a node it may kill (CI installs it).
  ignore: !await canStartPrivateNode(),
  ...options,
  async fn(t) {
    await using node = await startPrivateNode();
    await using scenario = await Scenario.open(node.url);
    const file = await scheduleFile({ catchUp: "once", schedules: [EVERY_SECOND] });
    let tasks = await scenario.collect(scenario.queue);
    const schedulers: Child[] = [];
    let before: ConsumeMessage[] = [];

    await scenario.step(t, "two schedulers fire eight ticks", async () => {
      for (const name of ["s1", "s2"]) schedulers.push(await startScheduler(scenario, name, file));
      // Not sooner: RabbitMQ 3.10.8 may lose a quorum queue declared seconds before a kill -9.
      await tasks.waitFor(8, "eight ticks");
    });

    let back = 0;
    await scenario.step(t, "the broker is SIGKILLed and restarted on its data dir", async () => {
      await node.kill();
      before = [...tasks.messages];
      await node.restart();
      back = Date.now();
      await scenario.reconnect();
      tasks = await scenario.collect(scenario.queue);
    });

    await scenario.step(t, "a scheduler leads again and fires five more ticks", async () => {
      await tasks.waitFor(5, "five ticks after the restart", 60_000);
      for (const child of schedulers) {
        assert.ok(child.running, `${child.name} is the same process, reconnected`);
        child.kill("SIGTERM");
        assert.equal((await child.exit()).code, 0, `${child.name} exits 0 on SIGTERM`);
      }
    });

    await scenario.step(t, "no tick twice; of the ticks missed, the last fired late", () => {
      const ticks = ticksOf([...before, ...tasks.messages], EVERY_SECOND.id).sort((a, b) => a - b);
      assert.equal(new Set(ticks).size, ticks.length, "no tick was enqueued twice");
      const gaps = ticks.flatMap((tick, i) => i > 0 && tick - ticks[i - 1]! !== 1_000 ? [i] : []);
      assert.equal(gaps.length, 1, "one second apart, but for one gap: the outage");
      // catchUp "once": the last tick missed during the outage is fired late, then each second.
      const late = schedulers.flatMap((c) => c.lines.filter((l) => /a missed tick, late/.test(l)));
      assert.equal(late.length, 1, `one missed tick fired late: ${late.join("; ")}`);
      const resumed = new Date(ticks[gaps[0]!]!).toISOString();
      assert.match(late[0]!, new RegExp(`Fired every-second@${resumed.replaceAll(".", "\\.")}`));
      console.log(
        `${before.length} ticks before the crash, ${tasks.messages.length} after; broker back ` +
          `at ${new Date(back).toISOString()}; ticks resume at ${resumed}, fired late`,
      );
    });
    scenario.pass();
  },
});

Deno.test({
  name: "deno task schedule in a terminal: no permission prompt, fires, Ctrl-C exits 0",
  ...options,
  async fn() {
    await using scenario = await Scenario.open();
    const file = await scheduleFile({ schedules: [EVERY_SECOND] });
    try {
      await using terminal = await TerminalChild.start(
        "schedule",
        SCHEDULE,
        ["--file", file, "--queue", scenario.queue],
        { AMQP_URL: scenario.url },
      );
      await terminal.waitForLine(/Scheduler \S+ leads/);
      await terminal.waitForLine(/Fired every-second@/);
      await terminal.kill("SIGINT");
      assert.equal((await terminal.exit()).code, 0, terminal.output());
      assert.ok(await scenario.ready() >= 1, "the fired task is in the queue");
    } finally {
      await scenario.channel.deleteQueue(leaseQueue(scenario.queue)).catch(() => {});
    }
    scenario.pass();
  },
});

Deno.test({
  name: "a bad schedule file gets one line and exit 2, and declares nothing",
  ...options,
  async fn(t) {
    const url = await brokerUrl();
    const queue = freshQueue("bad-schedule");
    const cases: [string, string[], RegExp][] = [
      ["no --file", [], /^schedule: Missing --file/],
      ["a missing file", ["--file", "/nonexistent/s.json"], /no such file$/],
      ["a file that is not JSON", ["--file", await scheduleFile("{not json")], /not JSON/],
      [
        "a cron of three fields",
        ["--file", await scheduleFile({ schedules: [{ id: "a", cron: "* * *" }] })],
        /schedule "a": invalid cron "\* \* \*": /,
      ],
      [
        "an unknown time zone",
        [
          "--file",
          await scheduleFile({ schedules: [{ ...EVERY_SECOND, timezone: "Mars/Olympus" }] }),
        ],
        /unknown time zone "Mars\/Olympus"/,
      ],
      [
        "an unknown catchUp",
        ["--file", await scheduleFile({ catchUp: "all", schedules: [EVERY_SECOND] })],
        /"catchUp" must be "skip" or "once", not "all"$/,
      ],
    ];
    for (const [what, args, pattern] of cases) {
      await t.step(what, async () => {
        const result = await run(SCHEDULE, ["--queue", queue, ...args], { AMQP_URL: url });
        const lines = result.stderr.trim().split("\n");
        assert.equal(result.code, 2, `exit code; stderr:\n${result.stderr}`);
        assert.equal(lines.length, 1, `one line on stderr, got:\n${result.stderr}`);
        assert.match(lines[0]!, pattern);
      });
    }
    await using scenario = await Scenario.open(url);
    for (const name of [queue, leaseQueue(queue)]) {
      assert.equal(await scenario.queueExists(name), false, `${name} was not declared`);
    }
    scenario.pass();
  },
});

Deno.test({
  name: "a lease queue that exists with other arguments gets one line and exit 2",
  ...options,
  async fn() {
    await using scenario = await Scenario.open();
    const lease = leaseQueue(scenario.queue);
    // What an operator might have made by hand: a classic queue under the lease's name.
    await scenario.channel.assertQueue(lease, { durable: true });
    try {
      const file = await scheduleFile({ schedules: [EVERY_SECOND] });
      const result = await run(SCHEDULE, ["--file", file, "--queue", scenario.queue], {
        AMQP_URL: scenario.url,
      });
      assert.equal(result.code, 2, `exit code; stderr:\n${result.stderr}`);
      const lines = result.stderr.trim().split("\n");
      assert.equal(lines.length, 1, `one line on stderr, got:\n${result.stderr}`);
      assert.match(lines[0]!, /Cannot declare the scheduler's lease queue ".*\.scheduler"/);
      assert.equal(await scenario.ready(), 0, "no task was enqueued");
    } finally {
      await scenario.channel.deleteQueue(lease).catch(() => {});
    }
    scenario.pass();
  },
});
