/**
 * Delayed tasks (`enqueue(payload, { delay })` and `{ runAt }`) against the real broker: each
 * starts no earlier than its time and soon after it, in its own work queue only; a delayed task
 * survives the SIGKILL of every worker and the SIGKILL of the broker while it waits, and runs once.
 */
import assert from "node:assert/strict";
import { DELAY_LEVELS, delayLevel } from "../lib/core/delays.ts";
import { createWorker } from "../lib/core/worker/mod.ts";
import type { TaskEvent } from "../lib/core/events.ts";
import { canStartPrivateNode, startPrivateNode } from "../lib/operate/local_broker.ts";
import { Scenario, within } from "../testing/scenario.ts";
import { options, percentile, RETURNS_RESULT, startedLine, trackedProducer } from "./_calls.ts";

/** When each task was due and when its handler started (epoch ms), by task id. */
interface Timing {
  due: number;
  starts: number[];
  /** The delay asked for, in ms. */
  delay?: number;
}

/** Where messages wait: the work queue, and each level of the ladder that holds any. */
async function whereWaiting(scenario: Scenario): Promise<string> {
  const held = [`${scenario.queue}: ${await scenario.ready()}`];
  for (let level = 0; level < DELAY_LEVELS; level++) {
    const { messageCount } = await scenario.channel.checkQueue(delayLevel(level));
    if (messageCount > 0) held.push(`${delayLevel(level)}: ${messageCount}`);
  }
  return `ready messages in ${held.join(", ")}`;
}

/** Lateness of each started task (first start minus due), in ms. */
function lateness(timings: Map<string, Timing>): number[] {
  return [...timings.values()].filter((t) => t.starts.length > 0).map((t) => t.starts[0]! - t.due);
}

Deno.test({
  name: "1,000 tasks delayed 0 to 10 s each start no earlier than their time and, p99, within " +
    "1 s after it",
  // What is asserted is each task's own start against its own time, read in its handler: the
  // p99 of 1 s after is the promise for an idle system. (Until delayRoute entered the
  // ladder at each delay's highest level, every publish crossed 24 exchange-to-exchange hops,
  // and 1,000 at once were routed over 2-3 s: p99 2.5-3.8 s.)
  ...options,
  async fn(t) {
    // The ladder is shared by every work queue of a virtual host: on a broker others use, their
    // delayed tasks wait in the same queues and pass through the same dead-lettering as these.
    // Where rabbitmq-server is installed, a private node is the idle system the promise is for.
    await using node = await canStartPrivateNode() ? await startPrivateNode() : undefined;
    await using scenario = await Scenario.open(node?.url);
    const TASKS = 1_000;
    const timings = new Map<string, Timing>();
    let runs = 0;
    const allStarted = Promise.withResolvers<void>();
    let started = 0;
    // A no-op handler that only notes the time, with room for far more than the ~100 tasks a
    // second that come due: what is measured is the ladder, not a queue of tasks behind a slow
    // handler.
    await using _worker = await createWorker<{ warmUp?: boolean }>({
      url: scenario.url,
      queue: scenario.queue,
      name: "delays",
      concurrency: 100,
      prefetch: 500,
      handler: (task) => {
        const now = Date.now();
        const timing = timings.get(task.id);
        if (timing === undefined) return; // The warm-up task.
        runs++;
        timing.starts.push(now);
        if (timing.starts.length === 1 && ++started === TASKS) allStarted.resolve();
      },
    });
    await using tracked = await trackedProducer(scenario);
    const { producer } = tracked;

    await scenario.step(t, "a first delayed task declares the delays' ladder", async () => {
      // The ladder is declared at a connection's first delayed task: without this, the tasks
      // due within the first few hundred ms would be measured late by the declaring.
      await producer.enqueue({ warmUp: true }, { delay: 100 });
    });

    await scenario.step(
      t,
      `${TASKS} tasks are enqueued, half by delay, half by runAt`,
      async () => {
        const confirms: Promise<unknown>[] = [];
        for (let i = 0; i < TASKS; i++) {
          const id = crypto.randomUUID();
          const delay = Math.floor(Math.random() * 10_001);
          // Read just before enqueue, which reads the clock itself, synchronously: its own time
          // for the task is this or a little later.
          const now = Date.now();
          if (i % 2 === 0) {
            timings.set(id, { due: now + delay, starts: [], delay });
            confirms.push(producer.enqueue({ i }, { id, delay }));
          } else {
            const runAt = new Date(now + delay);
            timings.set(id, { due: runAt.getTime(), starts: [], delay });
            confirms.push(producer.enqueue({ i }, { id, runAt }));
          }
        }
        await within(Promise.all(confirms), 30_000, `the broker's confirms of ${TASKS} tasks`);
      },
    );

    await scenario.step(t, "every task starts, none before its time", async () => {
      await within(allStarted.promise, 40_000, `all ${TASKS} delayed tasks to start`).catch(
        async (error) => {
          throw new Error(
            `${started} of ${TASKS} tasks started; ${await whereWaiting(scenario)}`,
            { cause: error },
          );
        },
      );
      const late = lateness(timings);
      const early = [...timings].filter(([, timing]) => timing.starts[0]! < timing.due);
      const p50 = percentile(late, 50);
      const p99 = percentile(late, 99);
      const max = Math.max(...late);
      console.log(
        `lateness of ${TASKS} delayed tasks: p50 ${p50} ms, p99 ${p99} ms, max ${max} ms, ` +
          `min ${Math.min(...late)} ms`,
      );
      assert.deepEqual(
        early.map(([id, timing]) => `${id} started ${timing.due - timing.starts[0]!} ms early`),
        [],
        "no task starts before its time",
      );
      const latest = [...timings.values()].sort((a, b) =>
        b.starts[0]! - b.due - a.starts[0]! + a.due
      )
        .slice(0, 5).map((timing) =>
          `${timing.delay} ms late by ${timing.starts[0]! - timing.due}`
        );
      assert.ok(p99 <= 1_000, `p99 lateness ${p99} ms is within 1 s; the latest: ${latest}`);
      assert.equal(runs, TASKS, "each task ran once");
    });
    scenario.pass();
  },
});

Deno.test({
  name: "a delayed task reaches its own work queue only, not the others the ladder delivers to",
  ...options,
  async fn(t) {
    // Nothing consumes either queue: what the ladder delivered stays there to be read.
    await using a = await Scenario.open();
    await using b = await Scenario.open();
    await using producerA = await trackedProducer(a);
    await using producerB = await trackedProducer(b);
    const ids = { a: [] as string[], b: [] as string[] };

    await a.step(t, "a task for each queue, then a later one for a", async () => {
      ids.a.push((await producerA.producer.enqueue({ to: "a" }, { delay: 200 })).id);
      ids.b.push((await producerB.producer.enqueue({ to: "b" }, { delay: 200 })).id);
      ids.a.push((await producerA.producer.enqueue({ to: "a" }, { delay: 1_200 })).id);
    });

    await a.step(t, "each queue holds its own tasks and nothing else", async () => {
      // Once a's later task is there, the first two were delivered a second before: a copy of
      // either in the wrong queue would be there too.
      await a.readyBecomes(2, 15_000);
      const held = async (scenario: Scenario) => {
        const found: string[] = [];
        for (
          let message = await scenario.channel.get(scenario.queue, { noAck: true });
          message !== false;
          message = await scenario.channel.get(scenario.queue, { noAck: true })
        ) found.push(String(message.properties.messageId));
        return found.sort();
      };
      assert.deepEqual(await held(a), [...ids.a].sort(), "a holds its two tasks only");
      assert.deepEqual(await held(b), ids.b, "b holds its task only");
    });
    a.pass();
    b.pass();
  },
});

Deno.test({
  name: "a delayed task is durable once enqueue resolves: every worker SIGKILLed during its " +
    "wait, a new worker started later runs it once, not before its time",
  ...options,
  async fn(t) {
    await using scenario = await Scenario.open();
    const DELAY = 6_000;
    const first = [
      await scenario.startWorker("first-a", ["--handler", RETURNS_RESULT]),
      await scenario.startWorker("first-b", ["--handler", RETURNS_RESULT]),
    ];
    let id = "";
    let due = 0;

    await scenario.step(t, `a task is enqueued with a delay of ${DELAY} ms`, async () => {
      await using tracked = await trackedProducer(scenario);
      const now = Date.now();
      const task = await tracked.producer.enqueue(null, { delay: DELAY });
      id = task.id;
      due = now + DELAY;
      // The producer is closed here: nothing of it can publish the task again.
    });

    await scenario.step(t, "every worker is SIGKILLed while it waits", async () => {
      for (const child of first) {
        child.kill("SIGKILL");
        assert.equal((await child.exit()).signal, "SIGKILL", `${child.name} was SIGKILLed`);
      }
      await scenario.consumersBecome(0);
      assert.ok(Date.now() < due, "the kills came before the task's time");
      assert.equal(await scenario.ready(), 0, "the task is not in the work queue yet");
    });

    let later!: Awaited<ReturnType<Scenario["startWorker"]>>;
    await scenario.step(
      t,
      "a new worker, started later, runs it once, not before its time",
      async () => {
        later = await scenario.startWorker("later", ["--handler", RETURNS_RESULT]);
        const line = await later.waitForLine(startedLine(id), DELAY + 10_000);
        const startedAt = Number(startedLine(id).exec(line)![2]);
        console.log(`the task started ${startedAt - due} ms after its time`);
        assert.ok(startedAt >= due, `started ${due - startedAt} ms before its time`);
        await scenario.waitForEvent(
          (e) => e.type === "task.completed" && (e as TaskEvent).taskId === id,
          "the delayed task's completion",
        );
      },
    );

    await scenario.step(t, "it ran once, and nothing is left", async () => {
      // Stopped gracefully, the worker has acked everything it ran: a second copy of the task
      // would have been in its prefetch or is still in the queue.
      later.kill("SIGTERM");
      assert.equal((await later.exit()).code, 0, "the worker exits 0");
      const runs = [...first, later].flatMap((c) => c.lines).filter((l) => startedLine(id).test(l));
      assert.equal(runs.length, 1, "one run of the task");
      assert.equal(await scenario.ready(), 0, "nothing left in the work queue");
      assert.equal(await scenario.ready(`${scenario.queue}.dead`), 0, "nothing dead");
    });
    scenario.pass();
  },
});

Deno.test({
  name: "200 delayed tasks survive a broker SIGKILL and restart during their wait: none lost, " +
    "none early, each run once",
  // Needs rabbitmq-server installed to start a node it may kill (CI installs it).
  ignore: !await canStartPrivateNode(),
  ...options,
  async fn(t) {
    await using node = await startPrivateNode();
    await using scenario = await Scenario.open(node.url);
    const TASKS = 200;
    const timings = new Map<string, Timing>();
    let runs = 0;
    let started = 0;
    const allStarted = Promise.withResolvers<void>();
    // An in-process worker, connected the whole time: it reconnects by itself after the restart.
    await using worker = await createWorker({
      url: node.url,
      queue: scenario.queue,
      name: "survivor",
      concurrency: 20,
      prefetch: 100,
      handler: (task) => {
        const now = Date.now();
        const timing = timings.get(task.id);
        if (timing === undefined) return;
        runs++;
        timing.starts.push(now);
        if (timing.starts.length === 1 && ++started === TASKS) allStarted.resolve();
      },
    });

    let killed = 0;
    await scenario.step(t, `${TASKS} tasks are enqueued with delays of 8 to 28 s`, async () => {
      await using tracked = await trackedProducer(scenario);
      const confirms: Promise<unknown>[] = [];
      for (let i = 0; i < TASKS; i++) {
        const id = crypto.randomUUID();
        const delay = 8_000 + Math.floor(Math.random() * 20_000);
        timings.set(id, { due: Date.now() + delay, starts: [] });
        confirms.push(tracked.producer.enqueue({ i }, { id, delay }));
      }
      await within(Promise.all(confirms), 30_000, `the confirms of ${TASKS} delayed tasks`);
      // Closed before the kill: no producer is left to publish anything again.
    });

    await scenario.step(t, "the broker is SIGKILLed while they all wait", async () => {
      // The ladder's quorum queues and the work queue were declared moments ago. RabbitMQ 3.10
      // keeps quorum queues' Raft metadata in memory for up to 5 s, and a kill -9 before it is
      // written loses the queues with their messages (see ../shared/RABBITMQ.md): node.kill()
      // first syncs those metadata tables to disk (rabbitmqctl eval dets:sync of the ra_
      // tables; its flushQuorumMetadata option, on by default), then sends SIGKILL. Message
      // data is not touched: only what a real crash a few seconds later would have on disk.
      assert.equal(started, 0, "no task has run before the kill");
      const killing = Date.now();
      await node.kill();
      killed = Date.now();
      console.log(`the metadata sync and the kill took ${killed - killing} ms`);
      const due = [...timings.values()].filter((timing) => timing.due <= killed).length;
      assert.equal(due, 0, "every task was still waiting when the broker died");
    });

    await scenario.step(t, "the broker restarts on its data dir", async () => {
      await node.restart();
      await scenario.reconnect();
      const back = Date.now();
      const during = [...timings.values()].filter((timing) => timing.due <= back).length;
      console.log(
        `broker back ${back - killed} ms after the kill; ${during} task(s) came due while it ` +
          "was down",
      );
    });

    await scenario.step(t, "every task runs, none before its time, each once", async () => {
      await within(allStarted.promise, 60_000, `all ${TASKS} delayed tasks to start`);
      const early = [...timings].filter(([, timing]) => timing.starts[0]! < timing.due);
      assert.deepEqual(
        early.map(([id, timing]) => `${id} started ${timing.due - timing.starts[0]!} ms early`),
        [],
        "no task starts before its time",
      );
      const afterRestart = [...timings.values()].filter((timing) => timing.due > killed + 10_000);
      const late = lateness(new Map(afterRestart.map((timing, i) => [String(i), timing])));
      console.log(
        `lateness of the ${afterRestart.length} tasks due over 10 s after the kill: p50 ` +
          `${percentile(late, 50)} ms, max ${Math.max(...late)} ms`,
      );
      // Nothing of the ladder is left on this node, the only user of it: a second copy of any
      // task (dead-lettering is at least once) would be in a ladder queue or the work queue.
      for (let level = 0; level < DELAY_LEVELS; level++) {
        const { messageCount } = await scenario.channel.checkQueue(delayLevel(level));
        assert.equal(messageCount, 0, `${delayLevel(level)} is empty`);
      }
      await worker.close();
      assert.equal(await scenario.ready(), 0, "nothing left in the work queue");
      const twice = [...timings].filter(([, timing]) => timing.starts.length > 1);
      assert.deepEqual(twice.map(([id]) => id), [], "no task ran twice");
      assert.equal(runs, TASKS, "each task ran once");
    });
    scenario.pass();
  },
});
