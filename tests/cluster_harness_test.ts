/**
 * Tests of the cluster harness (lib/operate/local_cluster.ts) against three real private RabbitMQ nodes: a
 * quorum queue loses no confirmed message when its leader's node is SIGKILLed, the killed node
 * rejoins, a frozen node thaws, and stop() leaves nothing behind. Ignored, visibly, where
 * rabbitmq-server is not installed.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import amqp, { type ChannelModel, type ConfirmChannel } from "../lib/deps/amqplib.ts";
import { PrivateNodeError, processesMentioning, statFields } from "../lib/operate/local_broker.ts";
import { canStartCluster, type Cluster, startCluster } from "../lib/operate/local_cluster.ts";
import { freshQueue, within } from "../testing/scenario.ts";

const MESSAGES = 100;

async function connect(url: string): Promise<ChannelModel> {
  const connection = await within(amqp.connect(url), 10_000, `an AMQP connection to ${url}`);
  // A killed node closes connections with an error, always followed by `close`.
  connection.on("error", () => {});
  return connection;
}

/** Publishes persistent messages with these ids to `queue` through `channel`, all confirmed. */
async function publishConfirmed(
  channel: ConfirmChannel,
  queue: string,
  ids: string[],
): Promise<void> {
  for (const messageId of ids) {
    channel.sendToQueue(queue, Buffer.from(messageId), { persistent: true, messageId });
  }
  await within(channel.waitForConfirms(), 30_000, `the confirms of ${ids.length} messages`);
}

/**
 * Consumes from `queue` at `url`, acking, until `done` says the distinct message ids that have
 * arrived are enough.
 */
async function consumeIds(
  url: string,
  queue: string,
  done: (ids: Set<string>) => boolean,
): Promise<Set<string>> {
  const connection = await connect(url);
  try {
    const channel = await connection.createChannel();
    await channel.prefetch(50);
    const ids = new Set<string>();
    const all = Promise.withResolvers<void>();
    await channel.consume(queue, (message) => {
      if (message === null) return all.reject(new Error(`The consumer of ${queue} was cancelled`));
      ids.add(String(message.properties.messageId));
      channel.ack(message);
      if (done(ids)) all.resolve();
    });
    await within(all.promise, 30_000, `the messages awaited from ${queue} at ${url}`);
    await channel.close();
    return ids;
  } finally {
    await connection.close();
  }
}

/** `received` holds every id of `expected`, and besides them only ids of `earlier`. */
function assertOnlyRedeliveries(
  received: Set<string>,
  expected: string[],
  earlier: string[],
): void {
  for (const id of expected) assert.ok(received.has(id), `${id} arrived`);
  const known = new Set([...expected, ...earlier]);
  const unknown = [...received].filter((id) => !known.has(id));
  assert.deepEqual(unknown, [], "nothing arrived that was not published and confirmed");
}

/** The state letter of `pid` in `/proc/<pid>/stat` (R, S, T for stopped, Z...). */
async function processState(pid: number): Promise<string> {
  return statFields(await Deno.readTextFile(`/proc/${pid}/stat`))[0]!;
}

/** The pid of node `index`'s beam.smp, found by its name in the environment. */
async function beamPid(cluster: Cluster, index: number): Promise<number> {
  const name = cluster.nodes[index]?.name ?? "";
  for (const pid of await processesMentioning(name)) {
    const cmdline = await Deno.readTextFile(`/proc/${pid}/cmdline`).catch(() => "");
    if (cmdline.split("\0")[0]?.endsWith("beam.smp")) return pid;
  }
  throw new Error(`No beam.smp process mentions ${name}`);
}

/** What `cluster_status` on node `index` lists as running. */
async function runningNodes(cluster: Cluster, index: number): Promise<string[]> {
  const output = await cluster.rabbitmqctl(index, ["cluster_status", "--formatter", "json", "-q"]);
  return (JSON.parse(output) as { running_nodes: string[] }).running_nodes.toSorted();
}

Deno.test({
  name: "startCluster without rabbitmq-server fails in one line and leaves nothing running",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    const error = await startCluster({ serverPath: "/nonexistent/rabbitmq-server" })
      .then(() => undefined, (error: unknown) => error);
    assert.ok(error instanceof PrivateNodeError, `expected PrivateNodeError: ${error}`);
    assert.match(error.message, /rabbitmq-server is not installed/);
    assert.ok(!error.message.includes("\n"), error.message);
  },
});

Deno.test({
  name: "a 3-node cluster loses no confirmed message when the quorum queue leader's node is killed",
  ignore: !await canStartCluster(),
  sanitizeOps: true,
  sanitizeResources: true,
  async fn(t) {
    const started = performance.now();
    const cluster = await startCluster();
    const upMs = performance.now() - started;
    const nodes = [...cluster.nodes];
    try {
      const rss = await Promise.all(cluster.nodes.map((node) => node.rss()));
      const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(0);
      console.log(
        `cluster of 3 up in ${(upMs / 1000).toFixed(1)} s; RSS ${rss.map(mib).join(" + ")} = ` +
          `${mib(rss.reduce((sum, bytes) => sum + bytes, 0))} MiB`,
      );

      await t.step("three nodes on their own ports, one comma-separated URL list", async () => {
        const names = cluster.nodes.map((node) => node.name);
        assert.equal(new Set(names).size, 3, `distinct names: ${names}`);
        const ports = cluster.nodes.flatMap((node) => [node.port, node.distPort]);
        assert.equal(new Set(ports).size, 6, `distinct ports: ${ports}`);
        for (const port of [4369, 5672, 25672, 5701, 5702, 5703]) {
          assert.ok(!ports.includes(port), `port ${port} should not be used: ${ports}`);
        }
        assert.deepEqual(
          cluster.urls,
          cluster.nodes.map((node) => `amqp://guest:guest@127.0.0.1:${node.port}`),
        );
        assert.equal(cluster.url, cluster.urls.join(","));
        const cookies = await Promise.all(
          cluster.nodes.map((node) => Deno.readTextFile(`${node.dataDir}/.erlang.cookie`)),
        );
        assert.equal(new Set(cookies).size, 1, "the nodes share one Erlang cookie");
        for (let index = 0; index < 3; index++) {
          assert.deepEqual(await runningNodes(cluster, index), names.toSorted());
        }
      });

      const queue = freshQueue("cluster");
      const sent = Array.from({ length: MESSAGES }, () => crypto.randomUUID());
      const again = [crypto.randomUUID()]; // Published to the killed node once it is back.
      let leader = -1;

      await t.step(`${MESSAGES} confirmed persistent messages in a quorum queue`, async () => {
        const connection = await connect(cluster.urls[0] ?? "");
        try {
          const channel = await connection.createConfirmChannel();
          await channel.assertQueue(queue, {
            durable: true,
            arguments: { "x-queue-type": "quorum", "x-quorum-initial-group-size": 3 },
          });
          await publishConfirmed(channel, queue, sent);
          await channel.close();
        } finally {
          await connection.close();
        }
        leader = await cluster.leader(queue);
        assert.ok([0, 1, 2].includes(leader), `leader index ${leader}`);
        console.log(`leader of ${queue}: node ${leader} (${cluster.nodes[leader]?.name})`);
      });

      await t.step(
        "SIGKILL of the leader's node: a survivor's client gets all of them",
        async () => {
          const killed = performance.now();
          await cluster.kill(leader);
          assert.equal(cluster.running(leader), false);
          assert.deepEqual(await processesMentioning(cluster.nodes[leader]?.name ?? ""), []);
          const survivor = await cluster.leader(queue);
          assert.notEqual(survivor, leader, "a surviving node leads the queue");
          console.log(
            `new leader: node ${survivor}, ${Math.round(performance.now() - killed)} ms after kill`,
          );
          const consumer = (leader + 1) % 3;
          const received = await consumeIds(
            cluster.urls[consumer] ?? "",
            queue,
            (ids) => ids.size === MESSAGES,
          );
          assert.deepEqual([...received].toSorted(), sent.toSorted(), "no confirmed message lost");
        },
      );

      await t.step("start() brings the killed node back into the cluster", async () => {
        const restarting = performance.now();
        await cluster.start(leader);
        console.log(
          `node ${leader} back in the cluster in ${Math.round(performance.now() - restarting)} ms`,
        );
        assert.equal(cluster.running(leader), true);
        const names = cluster.nodes.map((node) => node.name).toSorted();
        assert.deepEqual(await runningNodes(cluster, leader), names);
        assert.deepEqual(await runningNodes(cluster, (leader + 1) % 3), names);
        // The restarted node takes clients and publishes into the queue again.
        const connection = await connect(cluster.urls[leader] ?? "");
        try {
          const channel = await connection.createConfirmChannel();
          await publishConfirmed(channel, queue, again);
          await channel.close();
        } finally {
          await connection.close();
        }
        const received = await consumeIds(
          cluster.urls[(leader + 2) % 3] ?? "",
          queue,
          (ids) => ids.has(again[0]!),
        );
        // At least once: acks sent while the new leader took over may be lost (seen on 3.10.8),
        // so earlier messages may come again; never one that was not confirmed.
        assertOnlyRedeliveries(received, again, sent);
      });

      await t.step("a frozen node is stopped; the others confirm; thaw resumes it", async () => {
        const current = await cluster.leader(queue);
        const frozen = (current + 1) % 3;
        const pid = await beamPid(cluster, frozen);
        await cluster.freeze(frozen);
        assert.equal(cluster.nodes[frozen]?.frozen, true);
        assert.equal(cluster.running(frozen), true, "a frozen node still runs");
        assert.equal(await processState(pid), "T", "a frozen beam.smp is stopped");
        // Two of three members are a majority: the queue keeps confirming.
        const during = [crypto.randomUUID()];
        const connection = await connect(cluster.urls[current] ?? "");
        try {
          const channel = await connection.createConfirmChannel();
          await publishConfirmed(channel, queue, during);
          await channel.close();
        } finally {
          await connection.close();
        }
        await cluster.thaw(frozen);
        assert.equal(cluster.nodes[frozen]?.frozen, false);
        assert.notEqual(await processState(pid), "T", "a thawed beam.smp runs");
        const status = await cluster.rabbitmqctl(frozen, ["status"]);
        assert.match(status, new RegExp(`Status of node ${cluster.nodes[frozen]?.name}`));
        const received = await consumeIds(
          cluster.urls[frozen] ?? "",
          queue,
          (ids) => ids.has(during[0]!),
        );
        assertOnlyRedeliveries(received, during, [...sent, ...again]);
      });
    } finally {
      await cluster.stop();
    }

    await t.step("stop() leaves no process and no data dir behind", async () => {
      for (const node of nodes) {
        assert.deepEqual(await processesMentioning(node.name), [], `processes of ${node.name}`);
        const left = await Deno.stat(node.dataDir).then(() => true, () => false);
        assert.equal(left, false, `${node.dataDir} should be removed`);
      }
      await cluster.stop(); // Idempotent.
    });
  },
});
