/**
 * Fault matrix, broker and network side: a broker crash and restart, a connection cut, a half-open
 * connection and a consumer cancelled by the broker. The same worker processes recover by
 * themselves; no confirmed task is lost.
 */
import assert from "node:assert/strict";
import { canStartPrivateNode, startPrivateNode } from "../lib/operate/local_broker.ts";
import type { TareasEvent, TaskEvent } from "../lib/core/events.ts";
import { createTask } from "../lib/core/task.ts";
import { type Child, Scenario, within } from "../testing/scenario.ts";
import {
  clientFrames,
  isMethod,
  type ProxyOptions,
  proxyTarget,
  startProxy,
  throughProxy,
} from "../testing/proxy.ts";

const options = { sanitizeOps: true, sanitizeResources: true };

/** How many `worker.online` events `worker` has published so far. */
function onlineCount(scenario: Scenario, worker: string): number {
  return scenario.events.filter((e) => e.type === "worker.online" && e.worker === worker).length;
}

/** Waits for the `n`-th `worker.online` event of `worker`. */
function waitOnline(scenario: Scenario, worker: string, n: number, ms = 30_000) {
  return scenario.waitForEvent(
    () => onlineCount(scenario, worker) >= n,
    `worker.online #${n} from ${worker}`,
    ms,
  );
}

/** A handler module under tests/handlers/, as a URL the worker's --handler accepts. */
function handler(name: string): string {
  return new URL(`./handlers/${name}.ts`, import.meta.url).href;
}

/** Counts the basic.ack frames a client sends through a proxy (its `tap`). */
function ackCounter(): { count: () => number; tap: NonNullable<ProxyOptions["tap"]> } {
  let count = 0;
  const tap = clientFrames((frame) => {
    if (isMethod(frame, 60, 80)) count++;
  });
  return { count: () => count, tap };
}

/**
 * Resolves once the `ignores_signal` handler of task #`seq` has returned in worker `child`, and a
 * status report that `child` made after that has arrived: anything the worker sent at the end of
 * that handler, an ack included, went through the proxy before that report.
 */
async function afterHandlerEnded(scenario: Scenario, child: Child, seq: number): Promise<void> {
  const ended = new RegExp(`^ignores_signal: task #${seq} ended at (\\d+)$`);
  const line = await child.waitForLine(ended, 15_000);
  const at = Number(ended.exec(line)![1]);
  await scenario.waitForEvent(
    (e) => e.type === "worker.status" && e.worker === child.name && Date.parse(e.at) > at,
    `a status report of ${child.name} made after its handler of task #${seq} returned`,
    5_000,
  );
}

/** A predicate for task events of one type (and one task, when given). */
function isTask(type: TaskEvent["type"], taskId?: string) {
  return (e: TareasEvent): e is TaskEvent =>
    e.type === type && (taskId === undefined || ("taskId" in e && e.taskId === taskId));
}

Deno.test({
  name: "a broker killed with SIGKILL and restarted on its data dir: the same workers reconnect " +
    "and every confirmed task completes",
  // Needs rabbitmq-server installed to start a node it may kill (CI installs it).
  ignore: !await canStartPrivateNode(),
  ...options,
  async fn(t) {
    await using node = await startPrivateNode();
    await using scenario = await Scenario.open(node.url, { durableEvents: true });
    // The producer connects through a proxy, held after the crash until a worker has completed a
    // task again: a producer that reconnects later than the workers must still see every event.
    await using proxy = startProxy(proxyTarget(node.url));
    const TASKS = 8;
    const workers = new Map<string, Child>();
    // 2 units × 0.5 s: each task runs 1 s, so the workers stay in step.
    const args = ["--time-scale", "0.5"];

    await scenario.step(t, "two workers come online", async () => {
      for (const name of ["w1", "w2"]) workers.set(name, await scenario.startWorker(name, args));
    });

    let producer!: Child;
    await scenario.step(t, `produce --wait publishes ${TASKS} tasks, all confirmed`, async () => {
      producer = await scenario.startWaitingProducer(
        TASKS,
        2,
        60,
        throughProxy(node.url, proxy.port),
      );
    });

    let killedAt = 0;
    let killIndex = 0;
    await scenario.step(t, "the broker is SIGKILLed while both workers hold a task", async () => {
      // Kill right after both workers started a task (within 400 ms of each other, of 1 s): no
      // completion event can be in flight, so the test's view of the run stays complete.
      const lastStart = new Map<string, number>();
      await scenario.waitForNextEvent((e) => {
        if (e.type === "task.completed") lastStart.delete(e.worker);
        if (e.type === "task.started") lastStart.set(e.worker, Date.parse(e.at));
        const starts = [...lastStart.values()];
        return e.type === "task.started" && scenario.completions().length >= 2 &&
          starts.length === 2 && Math.max(...starts) - Math.min(...starts) < 400;
      }, "both workers starting a task after two completions");
      await node.kill();
      killedAt = performance.now();
      killIndex = scenario.events.length;
      await producer.waitForLine(/Lost connection/, 10_000);
      proxy.pause();
    });

    await scenario.step(t, "the broker restarts on the same data dir", async () => {
      await node.restart();
      await scenario.reconnect();
      console.log(`broker back ${Math.round(performance.now() - killedAt)} ms after the kill`);
    });

    await scenario.step(t, "the same worker processes reconnect by themselves", async () => {
      for (const [name, child] of workers) {
        await waitOnline(scenario, name, 2, 60_000);
        assert.ok(child.running, `${name} never exited: the same process reconnected`);
      }
      console.log(`workers back ${Math.round(performance.now() - killedAt)} ms after the kill`);
    });

    await scenario.step(
      t,
      "a worker completes a task before the producer is let back in",
      async () => {
        await scenario.waitForEvent(
          (e) => e.type === "task.completed" && scenario.events.indexOf(e) >= killIndex,
          "a completion after the restart",
        );
        proxy.resume();
      },
    );

    await scenario.step(t, "every confirmed task completes after the restart", async () => {
      const before = new Set(
        scenario.completions().filter((e) => scenario.events.indexOf(e) < killIndex)
          .map((e) => e.taskId),
      ).size;
      await scenario.waitForCompleted(TASKS, 60_000);
      const after = scenario.completions().filter((e) => scenario.events.indexOf(e) >= killIndex);
      const perWorker = [...workers.keys()].map((name) =>
        `${name} ${after.filter((e) => e.worker === name).length}`
      );
      console.log(
        `${before} tasks completed before the kill, ${after.length} after (${
          perWorker.join(", ")
        })`,
      );
      assert.ok(after.length >= TASKS - before, "the rest completed after the restart");
      assert.ok(
        after.filter((e) => e.redelivered).length >= 2,
        "the two tasks in hand at the crash were redelivered",
      );
      assert.equal(scenario.events.filter((e) => e.type === "task.dead").length, 0);
    });

    await scenario.step(
      t,
      "the producer reconnected too, and its --wait summary has every task",
      async () => {
        const status = await producer.exit(60_000);
        assert.equal(status.code, 0, `produce --wait exits 0`);
        assert.match(producer.lines.join("\n"), new RegExp(`${TASKS}/${TASKS} tasks completed`));
      },
    );

    await scenario.step(t, "after a graceful stop nothing is left", async () => {
      for (const [name, child] of workers) {
        child.kill("SIGTERM");
        assert.equal((await child.exit()).code, 0, `${name} exits 0`);
      }
      assert.equal(await scenario.ready(), 0);
    });
    scenario.pass();
  },
});

Deno.test({
  name: "a connection cut mid-task: the task completes on another worker, the cut worker " +
    "abandons its copy (no second completion, no stale ack), reconnects and keeps working",
  ...options,
  async fn(t) {
    await using scenario = await Scenario.open();
    const acks = ackCounter();
    await using proxy = startProxy(proxyTarget(scenario.url), { tap: acks.tap });
    let a!: Child;
    let long!: TaskEvent;
    let acksAtCut = 0;

    await scenario.step(t, "worker A, through the proxy, starts a 3 s task", async () => {
      // Even a handler that ignores its signal is abandoned when its connection is lost: the
      // worker neither reports it completed nor acks it on its new channel.
      const args = ["--time-scale", "1", "--handler", handler("ignores_signal")];
      a = await scenario.startWorker("A", args, {
        AMQP_URL: throughProxy(scenario.url, proxy.port),
      });
      await scenario.produce(["--count", "1", "--min", "3", "--max", "3"]);
      long = await scenario.waitForEvent(isTask("task.started"), "A to start the task");
      assert.equal(long.worker, "A");
    });

    await scenario.step(t, "worker B, connected directly, comes online", async () => {
      await scenario.startWorker("B", ["--time-scale", "1"]);
    });

    await scenario.step(t, "the cut sends the task to B as a redelivery", async () => {
      assert.equal(proxy.connections, 1);
      acksAtCut = acks.count();
      proxy.cut();
      const again = await scenario.waitForEvent(
        (e) => isTask("task.started", long.taskId)(e) && e.worker === "B",
        "B to start the cut task",
        10_000,
      );
      assert.equal((again as TaskEvent).redelivered, true);
    });

    await scenario.step(t, "A reconnects by itself and takes a new task", async () => {
      await waitOnline(scenario, "A", 2);
      assert.ok(a.running);
      // B holds the cut task (prefetch 1): only A can take this one.
      const next = createTask(null, { seq: 2, complexity: 0 });
      await scenario.publish(next);
      const done = await scenario.waitForEvent(
        isTask("task.completed", next.id),
        "the new task to complete",
        15_000,
      ) as TaskEvent;
      assert.equal(done.worker, "A");
    });

    await scenario.step(
      t,
      "the cut task completes on B; A abandoned its copy: no completion, no ack",
      async () => {
        const onB = await scenario.waitForEvent(
          (e) => isTask("task.completed", long.taskId)(e) && e.worker === "B",
          "B to complete the cut task",
        ) as TaskEvent;
        assert.equal(onB.redelivered, true);
        await afterHandlerEnded(scenario, a, 1);
        const onA = scenario.completions().filter((e) =>
          e.taskId === long.taskId && e.worker === "A"
        );
        assert.equal(onA.length, 0, "A did not report the cut task completed");
        // Acking it on the new channel would ack another delivery or close the channel.
        assert.equal(acks.count() - acksAtCut, 1, "A's only ack since the cut is task #2's");
        assert.equal(onlineCount(scenario, "A"), 2, "no stale ack closed a channel of A");
      },
    );

    await scenario.step(
      t,
      "after a graceful stop nothing is left, and A reconnected only once",
      async () => {
        for (const child of scenario.children) {
          child.kill("SIGTERM");
          assert.equal((await child.exit()).code, 0, `${child.name} exits 0`);
        }
        await scenario.waitForEvent(
          (e) => e.type === "worker.offline" && e.worker === "A",
          "worker.offline from A",
        );
        assert.equal(onlineCount(scenario, "A"), 2, "no stale ack closed a channel of A");
        assert.equal(await scenario.ready(), 0);
      },
    );
    scenario.pass();
  },
});

Deno.test({
  name: "a half-open connection is detected by heartbeats on both sides: the task is " +
    "redelivered and the worker reconnects once the network is back",
  ...options,
  async fn(t) {
    await using scenario = await Scenario.open();
    const acks = ackCounter();
    await using proxy = startProxy(proxyTarget(scenario.url), { tap: acks.tap });
    let a!: Child;
    let long!: TaskEvent;
    let acksAtPause = 0;

    await scenario.step(
      t,
      "worker A, through the proxy with --heartbeat 1, starts a 6 s task",
      async () => {
        // A handler that ignores its signal runs to the end and then tries to ack, and with
        // --concurrency 2 it keeps one slot until then.
        const args = [
          ...["--time-scale", "1", "--heartbeat", "1", "--concurrency", "2"],
          ...["--handler", handler("ignores_signal")],
        ];
        a = await scenario.startWorker("A", args, {
          AMQP_URL: throughProxy(scenario.url, proxy.port),
        });
        await scenario.produce(["--count", "1", "--min", "6", "--max", "6"]);
        long = await scenario.waitForEvent(isTask("task.started"), "A to start the task");
        await scenario.startWorker("B", ["--time-scale", "0.1", "--heartbeat", "1"]);
      },
    );

    let paused = 0;
    await scenario.step(
      t,
      "the proxy stops forwarding: the broker notices and B gets the task",
      async () => {
        acksAtPause = acks.count();
        proxy.pause();
        paused = performance.now();
        const again = await scenario.waitForEvent(
          (e) => isTask("task.started", long.taskId)(e) && e.worker === "B",
          "B to start the task after the broker's heartbeat timeout",
          10_000,
        ) as TaskEvent;
        assert.equal(again.redelivered, true);
        const ms = Math.round(performance.now() - paused);
        console.log(`redelivered ${ms} ms after the pause`);
        // Two missed 1 s heartbeats, checked every second: 2 to 3 s, plus slack for a busy CI.
        assert.ok(ms < 6_000, `the broker took ${ms} ms to drop the connection`);
      },
    );

    await scenario.step(t, "A notices the dead connection by itself", async () => {
      await a.waitForLine(/Lost connection .*Heartbeat timeout/, 10_000);
      const ms = Math.round(performance.now() - paused);
      console.log(`A detected it ${ms} ms after the pause`);
      assert.ok(ms < 6_000, `A took ${ms} ms to detect the dead connection`);
    });

    await scenario.step(t, "when the network is back, A reconnects and works again", async () => {
      proxy.resume();
      await waitOnline(scenario, "A", 2);
      assert.ok(a.running);
      await scenario.waitForEvent(
        (e) => isTask("task.completed", long.taskId)(e) && e.worker === "B",
        "B to complete the task",
      );
      // With B stopped, only A can run the next task.
      const b = scenario.children.find((c) => c.name === "B")!;
      b.kill("SIGTERM");
      assert.equal((await b.exit()).code, 0);
      const next = createTask(null, { seq: 2, complexity: 0 });
      await scenario.publish(next);
      const done = await scenario.waitForEvent(
        isTask("task.completed", next.id),
        "the next task to complete",
      ) as TaskEvent;
      assert.equal(done.worker, "A");
    });

    await scenario.step(t, "A's abandoned handler ends without an ack", async () => {
      await afterHandlerEnded(scenario, a, 1);
      assert.equal(acks.count() - acksAtPause, 1, "A's only ack since the pause is task #2's");
      assert.equal(onlineCount(scenario, "A"), 2, "no stale ack closed a channel of A");
      a.kill("SIGTERM");
      assert.equal((await a.exit()).code, 0);
    });
    scenario.pass();
  },
});

Deno.test({
  name: "a consumer cancelled by the broker (work queue deleted) does not leave the worker idle",
  ...options,
  async fn(t) {
    await using scenario = await Scenario.open();
    const worker = await scenario.startWorker("orphan", ["--time-scale", "0"]);

    await scenario.step(t, "the work queue is deleted under the running worker", async () => {
      await scenario.channel.deleteQueue(scenario.queue);
    });

    await scenario.step(
      t,
      "the same process reconnects, declares the queue again and consumes",
      async () => {
        await waitOnline(scenario, "orphan", 2, 15_000);
        assert.ok(worker.running);
        await within(
          scenario.produce(["--count", "2", "--min", "0", "--max", "0"]),
          15_000,
          "the producer",
        );
        await scenario.waitForCompleted(2, 15_000);
        assert.ok(scenario.completions().every((e) => e.worker === "orphan"));
      },
    );

    await scenario.step(t, "and stops gracefully", async () => {
      worker.kill("SIGTERM");
      assert.equal((await worker.exit()).code, 0);
    });
    scenario.pass();
  },
});
