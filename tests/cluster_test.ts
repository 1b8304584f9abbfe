/**
 * tareas on a 3-node RabbitMQ cluster of private nodes: workers, producers and `--wait` given
 * the comma-separated list of the nodes' URLs keep working through the loss of any one node,
 * including the one leading the quorum queue, and through a frozen node; nothing confirmed is
 * lost. One cluster for the whole file (it takes about 20 s to start); each step uses its own
 * queue and brings back the node it killed.
 */
import assert from "node:assert/strict";
import amqp from "../lib/deps/amqplib.ts";
import type { TareasEvent, TaskEvent } from "../lib/core/events.ts";
import { createProducer, type Producer } from "../lib/core/producer/mod.ts";
import { declareTopology } from "../lib/core/topology.ts";
import { canStartCluster, type Cluster, startCluster } from "../lib/operate/local_cluster.ts";
import { type Child, run, Scenario, within } from "../testing/scenario.ts";

/** The node indexes: the leader is placed on 0, the test itself talks to 1. */
const LEADER = 0;
const OBSERVER = 1;

/** Declares a queue's topology through node `index`, which then leads it (client-local). */
async function declareOn(cluster: Cluster, index: number, queue: string): Promise<void> {
  const connection = await amqp.connect(cluster.urls[index]!);
  try {
    await declareTopology(await connection.createChannel(), queue);
  } finally {
    await connection.close();
  }
}

/** `host:port` of node `index`, as workers report it in their events. */
function nodeOf(cluster: Cluster, index: number): string {
  return `127.0.0.1:${cluster.nodes[index]!.port}`;
}

/** The node of the latest `worker.online` of each worker. */
function nodesByWorker(scenario: Scenario): Map<string, string> {
  const nodes = new Map<string, string>();
  for (const e of scenario.events) {
    if (e.type === "worker.online" && e.node) nodes.set(e.worker, e.node);
  }
  return nodes;
}

/**
 * Starts `count` workers on the list of all nodes, at least one of them connected to node
 * `index`. Each process picks a random node to start with, so workers that would leave node
 * `index` empty are stopped and replaced until one lands there.
 */
async function workersIncluding(
  scenario: Scenario,
  cluster: Cluster,
  index: number,
  count: number,
  args: string[],
): Promise<Map<string, Child>> {
  const workers = new Map<string, Child>();
  const wanted = nodeOf(cluster, index);
  for (let spawned = 1; workers.size < count; spawned++) {
    assert.ok(spawned <= 40, "40 workers started and none connected to the chosen node");
    const name = `w${spawned}`;
    const child = await scenario.startWorker(name, args, { AMQP_URL: cluster.url });
    const nodes = nodesByWorker(scenario);
    const covered = [...workers.keys()].some((w) => nodes.get(w) === wanted);
    if (workers.size === count - 1 && !covered && nodes.get(name) !== wanted) {
      child.kill("SIGTERM");
      await child.exit();
      continue;
    }
    workers.set(name, child);
  }
  return workers;
}

function isCompletion(e: TareasEvent): e is TaskEvent {
  return e.type === "task.completed";
}

Deno.test({
  name: "on a 3-node cluster, tareas survives losing the leader's node and a frozen node",
  ignore: !await canStartCluster(),
  // One cluster's processes span the steps; each step closes what it opens.
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const started = performance.now();
    await using cluster = await startCluster();
    console.log(`cluster up in ${Math.round(performance.now() - started)} ms`);
    // Each step brings back the nodes it killed, whatever happened, for the next one.
    const killed = new Set<number>();
    const kill = async (index: number) => {
      killed.add(index);
      await cluster.kill(index);
    };
    const step = (name: string, fn: () => Promise<void>) =>
      t.step(name, async () => {
        try {
          await fn();
        } finally {
          for (const index of killed) await cluster.start(index);
          killed.clear();
        }
      });

    await step(
      "the seed story: 3 workers, 10 tasks, the leader's node SIGKILLed mid-run: " +
        "all complete, duplicates only for tasks run on lost connections",
      async () => {
        await using scenario = await Scenario.open(cluster.urls[OBSERVER]);
        await declareOn(cluster, LEADER, scenario.queue);
        assert.equal(await cluster.leader(scenario.queue), LEADER);
        const workers = await workersIncluding(scenario, cluster, LEADER, 3, [
          ...["--time-scale", "0.5", "--heartbeat", "5"],
        ]);
        const lost = nodeOf(cluster, LEADER);
        const onLost = [...nodesByWorker(scenario)].filter(([, n]) => n === lost).map(([w]) => w);
        await scenario.produce(["--count", "10", "--min", "1", "--max", "2"]);
        await scenario.waitForEvent(() => scenario.completions().length >= 3, "3 completions");

        const before = scenario.events.length;
        const killedAt = performance.now();
        await kill(LEADER);
        // Tasks started on a connection to the lost node: those not completed, and those whose
        // completion was heard but whose ack may have been lost with the connection (seen: one
        // completed 30 ms before the kill ran again).
        const inFlight = new Set(
          scenario.events.slice(0, before).filter((e): e is TaskEvent =>
            e.type === "task.started" && onLost.includes(e.worker)
          ).map((e) => e.taskId),
        );
        await scenario.waitForNextEvent(isCompletion, "a completion after the kill", 30_000);
        console.log(
          `next completion ${Math.round(performance.now() - killedAt)} ms after the kill`,
        );
        for (const worker of onLost) {
          const back = await scenario.waitForEvent(
            (e) =>
              e.type === "worker.online" && e.worker === worker &&
              scenario.events.indexOf(e) >= before,
            `${worker} back online on another node`,
            30_000,
          );
          assert.notEqual((back as { node?: string }).node, lost, `${worker} moved`);
          console.log(
            `${worker} consuming again ${Math.round(performance.now() - killedAt)} ms ` +
              `after the kill`,
          );
        }

        await scenario.waitForCompleted(10, 60_000);
        const byTask = Map.groupBy(scenario.completions(), (e) => e.taskId);
        assert.equal(byTask.size, 10, "every task completed: none lost");
        const duplicates = [...byTask].filter(([, list]) => list.length > 1).map(([id]) => id);
        for (const id of duplicates) {
          assert.ok(inFlight.has(id), `task ${id} completed twice, yet was not in flight`);
        }
        console.log(
          `${inFlight.size} task(s) in flight on the lost node, ${duplicates.length} ` +
            "completed twice",
        );
        for (const child of workers.values()) {
          child.kill("SIGTERM");
          assert.equal((await child.exit()).code, 0);
        }
        assert.equal(await scenario.ready(), 0, "the queue is empty at the end");
        scenario.pass();
      },
    );

    await step(
      "a producer publishing 1,000 tasks with --wait while the leader's node dies: every " +
        "confirmed task completes",
      async () => {
        await using scenario = await Scenario.open(cluster.urls[OBSERVER]);
        await declareOn(cluster, LEADER, scenario.queue);
        for (const name of ["p1", "p2"]) {
          await scenario.startWorker(name, ["--time-scale", "0"], { AMQP_URL: cluster.url });
        }
        // Tasks from standard input are published as they come: half before the kill, half
        // after it.
        const producer = scenario.spawnProducer(["--stdin", "--wait", "--timeout", "120"], {
          AMQP_URL: cluster.url,
        });
        const lines = (from: number) =>
          Array.from({ length: 500 }, (_, i) => JSON.stringify({ n: from + i }) + "\n").join("");
        await producer.write(lines(0));
        await scenario.waitForEvent(() => scenario.completions().length >= 100, "100 completions");
        await kill(LEADER);
        await producer.write(lines(500));
        await producer.closeInput();
        const status = await producer.exit(120_000);
        const output = producer.lines.join("\n");
        assert.equal(status.code, 0, output);
        assert.match(output, /^1000\/1000 tasks completed$/m);
        const seqs = new Set(scenario.completions().map((e) => e.seq));
        assert.equal(seqs.size, 1000, "every task completed");
        scenario.pass();
      },
    );

    await step(
      "a producer that loses its node reconnects while the survivors elect the queue's leader: " +
        "its new channel refuses every task (basic.nack), so it publishes them on another",
      async () => {
        await using scenario = await Scenario.open(cluster.urls[OBSERVER]);
        await declareOn(cluster, LEADER, scenario.queue);
        const url = `${cluster.urls[LEADER]},${cluster.urls[OBSERVER]}`;
        let producer: Producer | undefined;
        for (let i = 1; producer === undefined; i++) {
          assert.ok(i <= 40, "40 producers connected and none to the leader's node");
          const candidate = await createProducer({ url, queue: scenario.queue, name: `p${i}` });
          const on = await cluster.rabbitmqctl(LEADER, ["list_connections", "client_properties"]);
          if (on.includes(`"p${i}"`)) producer = candidate;
          else await candidate.close();
        }
        try {
          await kill(LEADER);
          // Measured on 3.10: a channel opened this soon refuses every publish for good; on
          // that channel alone, these would be refused for 60 s and then reported.
          const payloads = Array.from({ length: 200 }, (_, n) => ({ n }));
          const tasks = await within(producer.enqueueMany(payloads), 30_000, "200 confirms");
          assert.equal(tasks.length, 200);
        } finally {
          await producer.close();
        }
        assert.ok(await scenario.ready() >= 200, "every confirmed task is in the queue");
        scenario.pass();
      },
    );

    await step(
      "a frozen node: workers connected to it move to another node within a few " +
        "heartbeats, and nothing is lost",
      async () => {
        const FROZEN = 2;
        await using scenario = await Scenario.open(cluster.urls[OBSERVER]);
        await declareOn(cluster, LEADER, scenario.queue);
        await workersIncluding(scenario, cluster, FROZEN, 3, [
          ...["--time-scale", "0.2", "--heartbeat", "2"],
        ]);
        const frozen = nodeOf(cluster, FROZEN);
        const onFrozen = [...nodesByWorker(scenario)].filter(([, n]) => n === frozen).map(([w]) =>
          w
        );
        const before = scenario.events.length;
        await cluster.freeze(FROZEN);
        const frozenAt = performance.now();
        try {
          for (const worker of onFrozen) {
            await scenario.waitForEvent(
              (e) =>
                e.type === "worker.online" && e.worker === worker &&
                scenario.events.indexOf(e) >= before,
              `${worker} back online on another node`,
              30_000,
            );
            console.log(
              `${worker} moved ${Math.round(performance.now() - frozenAt)} ms after ` +
                "the freeze",
            );
          }
          await scenario.produce(["--count", "20", "--min", "1", "--max", "1"]);
          // The moved workers consume on the other nodes. Until the frozen node wakes (or the
          // others declare it down, after net_ticktime), the queue may still hand a few tasks
          // to the consumers it had there: those come back once it is thawed.
          await scenario.waitForCompleted(10, 60_000);
        } finally {
          await cluster.thaw(FROZEN);
        }
        await scenario.waitForCompleted(20, 60_000);
        assert.equal(new Set(scenario.completions().map((e) => e.taskId)).size, 20, "none lost");
        scenario.pass();
      },
    );
  },
});

Deno.test({
  name: "a bad list of broker URLs is one line and exit 2: an empty entry, another scheme, a " +
    "host listed twice",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn(t) {
    const cases: [string, RegExp][] = [
      ["amqp://u:s3cret@h1:5672,,amqp://u:s3cret@h2:5672", /the list has an empty entry/],
      ["amqp://u:s3cret@h1:5672,http://u:s3cret@h2:5672", /expected amqp:\/\/ or amqps:\/\//],
      ["amqp://u:s3cret@h1:5672,amqp://u:s3cret@h1:5672", /lists h1:5672 more than once/],
    ];
    for (const [url, reason] of cases) {
      await t.step(url.replaceAll("s3cret", "***"), async () => {
        const result = await run("work", [], { AMQP_URL: url });
        const lines = result.stderr.trim().split("\n");
        assert.equal(result.code, 2, result.stderr);
        assert.equal(lines.length, 1, result.stderr);
        assert.match(lines[0]!, /^worker: Invalid AMQP_URL "/);
        assert.match(lines[0]!, reason);
        assert.doesNotMatch(result.stderr, /s3cret/);
      });
    }
  },
});
