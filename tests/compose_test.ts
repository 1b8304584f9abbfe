/**
 * Checks compose.yaml's structure without Docker: the services, the broker's image, healthcheck and
 * credentials, that the worker and producer run the same commands as the deno.json tasks, the
 * cluster profile (three nodes that can find and trust each other, clients given all three URLs)
 * and the brokers' message size limit, which a private node started with the same settings
 * enforces; the workers' healthcheck, which asks their /readyz (run here against a real worker).
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import amqp from "../lib/deps/amqplib.ts";
import { parse } from "yaml";
import { parseWorkerArgs } from "../lib/cli/config.ts";
import { canStartPrivateNode, startPrivateNode } from "../lib/operate/local_broker.ts";
import { Scenario, within } from "../testing/scenario.ts";

const root = new URL("../", import.meta.url);

type Mapping = Record<string, unknown>;

function mapping(value: unknown, what: string): Mapping {
  assert.ok(
    typeof value === "object" && value !== null && !Array.isArray(value),
    `${what} should be a mapping, got ${JSON.stringify(value)}`,
  );
  return value as Mapping;
}

/** A service's environment as a map, from either of Compose's two syntaxes. */
function environment(service: Mapping, what: string): Record<string, string> {
  const env = service.environment;
  if (Array.isArray(env)) {
    return Object.fromEntries(env.map((entry) => {
      const text = String(entry);
      const equals = text.indexOf("=");
      return equals === -1 ? [text, ""] : [text.slice(0, equals), text.slice(equals + 1)];
    }));
  }
  return Object.fromEntries(
    Object.entries(mapping(env, `${what}.environment`)).map(([key, value]) => [key, String(value)]),
  );
}

/** A service's command as an argument list, from either of Compose's two syntaxes. */
function command(service: Mapping, what: string): string[] {
  const value = service.command;
  if (Array.isArray(value)) return value.map(String);
  assert.equal(typeof value, "string", `${what}.command should be a string or a list`);
  return String(value).trim().split(/\s+/);
}

/** The container ports a service publishes on the host. */
function publishedPorts(service: Mapping): number[] {
  const ports = service.ports;
  if (ports === undefined) return [];
  assert.ok(Array.isArray(ports), "ports should be a list");
  return ports.map((port) => {
    if (typeof port === "object" && port !== null) return Number((port as Mapping).target);
    return Number(String(port).split(":").at(-1)?.split("/")[0]);
  });
}

/** The profiles a service belongs to; none means it always runs. */
function profiles(service: Mapping): string[] {
  const value = service.profiles;
  if (value === undefined) return [];
  assert.ok(Array.isArray(value), "profiles should be a list");
  return value.map(String);
}

/** A service's `depends_on` as a map of service name to condition. */
function dependencies(service: Mapping, what: string): Record<string, string> {
  const value = service.depends_on;
  if (value === undefined) return {};
  if (Array.isArray(value)) return Object.fromEntries(value.map((name) => [String(name), ""]));
  return Object.fromEntries(
    Object.entries(mapping(value, `${what}.depends_on`)).map((
      [name, options],
    ) => [name, String(mapping(options, `${what}.depends_on.${name}`).condition ?? "")]),
  );
}

/** The configs a service mounts, with their top-level definitions. */
function mountedConfigs(service: Mapping, what: string): {
  target: string;
  content: string;
  uid: string | undefined;
  mode: number | undefined;
}[] {
  const value = service.configs ?? [];
  assert.ok(Array.isArray(value), `${what}.configs should be a list`);
  const definitions = mapping(compose.configs ?? {}, "configs");
  return value.map((entry) => {
    const mount = typeof entry === "string" ? { source: entry } : mapping(entry, `${what}.configs`);
    const source = String(mount.source);
    const definition = mapping(definitions[source], `configs.${source}`);
    assert.equal(typeof definition.content, "string", `configs.${source} should have content`);
    return {
      target: String(mount.target ?? `/${source}`),
      content: String(definition.content),
      uid: mount.uid === undefined ? undefined : String(mount.uid),
      mode: mount.mode === undefined ? undefined : Number(mount.mode),
    };
  });
}

/**
 * A broker's effective rabbitmq.conf settings: the image's `/etc/rabbitmq/rabbitmq.conf`, then
 * `/etc/rabbitmq/conf.d/*.conf` by file name, later values winning.
 */
function brokerSettings(service: Mapping, what: string): Record<string, string> {
  const files = mountedConfigs(service, what)
    .filter(({ target }) =>
      target === "/etc/rabbitmq/rabbitmq.conf" ||
      /^\/etc\/rabbitmq\/conf\.d\/[^/]+\.conf$/.test(target)
    )
    .sort((a, b) =>
      a.target.endsWith("/rabbitmq.conf")
        ? -1
        : b.target.endsWith("/rabbitmq.conf")
        ? 1
        : a.target.localeCompare(b.target)
    );
  const settings: Record<string, string> = {};
  for (const { content } of files) {
    for (const line of content.split("\n")) {
      const text = line.replace(/#.*/, "").trim();
      if (text === "") continue;
      const equals = text.indexOf("=");
      assert.ok(equals > 0, `${what}: a rabbitmq.conf line should be "key = value": ${line}`);
      settings[text.slice(0, equals).trim()] = text.slice(equals + 1).trim();
    }
  }
  return settings;
}

const compose = mapping(
  parse(await Deno.readTextFile(new URL("compose.yaml", root))),
  "compose.yaml",
);
const services = mapping(compose.services, "services");
const rabbitmq = mapping(services.rabbitmq, "services.rabbitmq");
const NODES = ["rabbitmq-1", "rabbitmq-2", "rabbitmq-3"] as const;
const nodes = NODES.map((name) => mapping(services[name], `services.${name}`));
const clusterWorker = mapping(services["cluster-worker"], "services.cluster-worker");
const clusterProducer = mapping(services["cluster-producer"], "services.cluster-producer");
const worker = mapping(services.worker, "services.worker");
const producer = mapping(services.producer, "services.producer");
const tasks = mapping(
  mapping(JSON.parse(await Deno.readTextFile(new URL("deno.json", root))), "deno.json").tasks,
  "deno.json tasks",
);

Deno.test({
  name: "compose.yaml runs the broker on rabbitmq:4-management with a healthcheck and a volume",
  sanitizeOps: true,
  sanitizeResources: true,
  fn() {
    const always = Object.keys(services).filter((name) =>
      profiles(services[name] as Mapping).length === 0
    );
    assert.deepEqual(
      always.sort(),
      ["producer", "rabbitmq", "worker"],
      "`docker compose up` runs these",
    );
    for (const name of always) {
      for (const dependency of Object.keys(dependencies(services[name] as Mapping, name))) {
        assert.ok(always.includes(dependency), `${name} should not depend on ${dependency}`);
      }
    }
    assert.equal(rabbitmq.image, "rabbitmq:4-management");
    const healthcheck = mapping(rabbitmq.healthcheck, "services.rabbitmq.healthcheck");
    assert.match(
      JSON.stringify(healthcheck.test),
      /rabbitmq-diagnostics.*(ping|check_port_connectivity)/,
    );
    const ports = publishedPorts(rabbitmq);
    assert.ok(ports.includes(5672), `5672 should be published, got ${ports}`);
    assert.ok(ports.includes(15672), `15672 should be published, got ${ports}`);
    const volumes = rabbitmq.volumes;
    assert.ok(Array.isArray(volumes), "services.rabbitmq.volumes should be a list");
    const data = volumes.map(String).find((volume) => volume.endsWith(":/var/lib/rabbitmq"));
    assert.ok(data !== undefined, "a volume should be mounted at /var/lib/rabbitmq");
    const volumeName = data.split(":")[0] ?? "";
    assert.ok(
      Object.hasOwn(mapping(compose.volumes, "volumes"), volumeName),
      `the data volume should be a named volume declared under volumes: ${volumeName}`,
    );
  },
});

Deno.test({
  name: "compose.yaml workers and producer wait for a healthy broker and use its credentials",
  sanitizeOps: true,
  sanitizeResources: true,
  fn() {
    const brokerEnv = environment(rabbitmq, "services.rabbitmq");
    const user = brokerEnv.RABBITMQ_DEFAULT_USER;
    const pass = brokerEnv.RABBITMQ_DEFAULT_PASS;
    assert.ok(user, "the broker should set RABBITMQ_DEFAULT_USER (guest is loopback-only)");
    assert.ok(pass, "the broker should set RABBITMQ_DEFAULT_PASS");
    assert.notEqual(user, "guest", "guest may only connect from loopback");
    for (const [name, service] of [["worker", worker], ["producer", producer]] as const) {
      assert.equal(service.image, "denoland/deno:2.9.6", `${name} image`);
      assert.equal(service.working_dir, "/app", `${name} working_dir`);
      const dependsOn = mapping(service.depends_on, `${name}.depends_on`);
      assert.equal(
        mapping(dependsOn.rabbitmq, `${name}.depends_on.rabbitmq`).condition,
        "service_healthy",
        `${name} should wait for a healthy broker`,
      );
      const url = new URL(environment(service, name).AMQP_URL ?? "");
      assert.equal(url.protocol, "amqp:", `${name} AMQP_URL scheme`);
      assert.equal(url.hostname, "rabbitmq", `${name} AMQP_URL should name the broker service`);
      assert.equal(decodeURIComponent(url.username), user, `${name} AMQP_URL user`);
      assert.equal(decodeURIComponent(url.password), pass, `${name} AMQP_URL password`);
    }
    assert.equal(producer.restart, "no", "the producer publishes once");
  },
});

Deno.test({
  name: "compose.yaml workers can be scaled: no container_name, no host ports",
  sanitizeOps: true,
  sanitizeResources: true,
  fn() {
    for (const service of [worker, clusterWorker]) {
      assert.equal(service.container_name, undefined);
      assert.equal(service.ports, undefined);
    }
  },
});

Deno.test({
  name: "compose.yaml runs the commands of the work and produce tasks, on files that exist",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    for (
      const [name, service, task] of [
        ["worker", worker, "work"],
        ["producer", producer, "produce"],
        ["cluster-worker", clusterWorker, "work"],
        ["cluster-producer", clusterProducer, "produce"],
      ] as const
    ) {
      const taskArgs = String(tasks[task]).trim().split(/\s+/);
      const all = command(service, `services.${name}`);
      const args = all.slice(0, taskArgs.length);
      assert.deepEqual(args, taskArgs, `${name} vs task ${task}`);
      // Workers add their metrics and health flags (checked below); producers add nothing.
      if (task === "produce") assert.deepEqual(all.slice(taskArgs.length), [], name);
      const scripts = args.filter((arg) => arg.endsWith(".ts"));
      assert.equal(scripts.length, 1, `${name} should run one script: ${args.join(" ")}`);
      const script = scripts[0] ?? "";
      const stat = await Deno.stat(new URL(script, root)).catch(() => undefined);
      assert.ok(stat?.isFile, `${name} runs ${script}, which should exist in the repo`);
    }
  },
});

Deno.test({
  name: "compose.yaml cluster profile: three rabbitmq:4-management nodes with fixed hostnames, " +
    "their own volumes and one Erlang cookie",
  sanitizeOps: true,
  sanitizeResources: true,
  fn() {
    const clustered = Object.keys(services).filter((name) =>
      profiles(services[name] as Mapping).includes("cluster")
    );
    assert.deepEqual(clustered.sort(), ["cluster-producer", "cluster-worker", ...NODES]);
    const cookies = new Set<string>();
    const volumes = new Set<string>();
    for (const [index, node] of nodes.entries()) {
      const name = NODES[index] ?? "";
      assert.equal(node.image, "rabbitmq:4-management", `${name} image`);
      // The node name, rabbit@<hostname>, is what peer discovery and the data dir go by.
      assert.equal(node.hostname, name, `${name} hostname`);
      assert.match(
        JSON.stringify(mapping(node.healthcheck, `${name}.healthcheck`).test),
        /rabbitmq-diagnostics.*(ping|check_port_connectivity)/,
      );
      const data = (node.volumes as unknown[]).map(String)
        .find((volume) => volume.endsWith(":/var/lib/rabbitmq"));
      assert.ok(data !== undefined, `${name} should keep its data in a volume`);
      volumes.add(data.split(":")[0] ?? "");
      const cookie = mountedConfigs(node, name)
        .find(({ target }) => target === "/var/lib/rabbitmq/.erlang.cookie");
      assert.ok(cookie !== undefined, `${name} should mount an Erlang cookie`);
      assert.match(cookie.content, /^\S{16,255}$/, `${name}: a cookie of 16-255 characters`);
      assert.equal(cookie.uid, "999", `${name}: the cookie belongs to the image's rabbitmq user`);
      assert.ok(
        cookie.mode !== undefined && (cookie.mode & 0o077) === 0,
        `${name}: Erlang refuses a cookie others may read, mode ${cookie.mode?.toString(8)}`,
      );
      cookies.add(cookie.content);
    }
    assert.equal(cookies.size, 1, "the nodes share one Erlang cookie");
    assert.equal(volumes.size, 3, `each node has its own data volume: ${[...volumes]}`);
    for (const volume of volumes) {
      assert.ok(Object.hasOwn(mapping(compose.volumes, "volumes"), volume), `volume ${volume}`);
    }
  },
});

Deno.test({
  name: "compose.yaml cluster nodes find each other: classic_config peer discovery lists all three",
  sanitizeOps: true,
  sanitizeResources: true,
  fn() {
    for (const [index, node] of nodes.entries()) {
      const name = NODES[index] ?? "";
      const settings = brokerSettings(node, name);
      assert.match(
        settings["cluster_formation.peer_discovery_backend"] ?? "",
        /^(classic_config|rabbit_peer_discovery_classic_config)$/,
        `${name} peer discovery backend`,
      );
      const listed = Object.entries(settings)
        .filter(([key]) => /^cluster_formation\.classic_config\.nodes\.\d+$/.test(key))
        .map(([, value]) => value)
        .sort();
      assert.deepEqual(listed, NODES.map((host) => `rabbit@${host}`), `${name} peer list`);
    }
  },
});

Deno.test({
  name: "compose.yaml cluster workers and producer get the three nodes' URLs in AMQP_URL and " +
    "wait for all three to be healthy",
  sanitizeOps: true,
  sanitizeResources: true,
  fn() {
    const credentials = new Set(
      nodes.map((node, index) => {
        const env = environment(node, NODES[index] ?? "");
        return `${env.RABBITMQ_DEFAULT_USER}:${env.RABBITMQ_DEFAULT_PASS}`;
      }),
    );
    assert.equal(credentials.size, 1, "the nodes share one default user");
    const [user, pass] = [...credentials][0]?.split(":") ?? [];
    assert.ok(user && user !== "guest" && pass, "a user other than guest, with a password");
    for (
      const [name, service] of [
        ["cluster-worker", clusterWorker],
        ["cluster-producer", clusterProducer],
      ] as const
    ) {
      const urls = (environment(service, name).AMQP_URL ?? "").split(",").map((text) =>
        new URL(text.trim())
      );
      assert.equal(urls.length, 3, `${name} AMQP_URL should list three URLs`);
      assert.deepEqual(urls.map((url) => url.hostname).sort(), [...NODES], `${name} hosts`);
      for (const url of urls) {
        assert.equal(url.protocol, "amqp:", `${name} AMQP_URL scheme`);
        assert.ok(url.port === "" || url.port === "5672", `${name} AMQP_URL port ${url.port}`);
        assert.equal(decodeURIComponent(url.username), user, `${name} AMQP_URL user`);
        assert.equal(decodeURIComponent(url.password), pass, `${name} AMQP_URL password`);
      }
      assert.deepEqual(
        dependencies(service, name),
        Object.fromEntries(NODES.map((node) => [node, "service_healthy"])),
        `${name} should wait for the three nodes to be healthy`,
      );
    }
  },
});

Deno.test({
  name: "compose.yaml every broker refuses messages bigger than max_message_size, above the " +
    "workers' default --max-body",
  sanitizeOps: true,
  sanitizeResources: true,
  fn() {
    // The worker's default --max-body (README, lib/core/options.ts): bodies up to here are tasks.
    const defaultMaxBody = 1_048_576;
    // RabbitMQ 4's own default, which the setting is meant to lower.
    const rabbitmq4Default = 16 * 1_048_576;
    const limits = new Set<string>();
    for (
      const [name, service] of [
        ["rabbitmq", rabbitmq],
        ...NODES.map((node, index) => [node, nodes[index]] as const),
      ] as const
    ) {
      const value = brokerSettings(service as Mapping, name).max_message_size;
      assert.match(value ?? "", /^\d+$/, `${name} should set max_message_size in bytes`);
      const bytes = Number(value);
      assert.ok(bytes > defaultMaxBody, `${name}: ${bytes} should exceed --max-body's default`);
      assert.ok(bytes < rabbitmq4Default, `${name}: ${bytes} should be below RabbitMQ's default`);
      limits.add(String(value));
    }
    assert.equal(limits.size, 1, "single broker and cluster nodes share one limit");
  },
});

Deno.test({
  name: "compose.yaml's broker settings load on a real node, which refuses a message one byte " +
    "over max_message_size",
  ignore: !await canStartPrivateNode(),
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    const config = mountedConfigs(rabbitmq, "rabbitmq")
      .filter(({ target }) => target.startsWith("/etc/rabbitmq/"))
      .map(({ content }) => content)
      .join("\n");
    const limit = Number(brokerSettings(rabbitmq, "rabbitmq").max_message_size);
    await using node = await startPrivateNode({ config });
    const connection = await within(amqp.connect(node.url), 10_000, "a connection to the node");
    connection.on("error", () => {});
    try {
      const channel = await connection.createConfirmChannel();
      const closed = new Promise<Error>((resolve) => channel.once("error", resolve));
      const { queue } = await channel.assertQueue("", { exclusive: true });
      channel.sendToQueue(queue, Buffer.alloc(limit));
      await within(channel.waitForConfirms(), 10_000, `the confirm of a ${limit}-byte message`);
      // One byte more: the broker closes the channel before any consumer could see it.
      channel.sendToQueue(queue, Buffer.alloc(limit + 1));
      const error = await within(closed, 10_000, "the channel to close on an oversized message");
      assert.match(String(error), /406.*larger than configured max size/s);
    } finally {
      await connection.close();
    }
  },
});

/** The worker flags a service adds after the `work` task's command, parsed as the worker does. */
function workerFlags(service: Mapping, what: string) {
  const taskArgs = String(tasks.work).trim().split(/\s+/);
  const config = parseWorkerArgs(command(service, what).slice(taskArgs.length), {});
  assert.notEqual(config, "help", `${what} should not ask for help`);
  return config as Exclude<typeof config, "help">;
}

/** A worker service's healthcheck command, as the argument list Docker runs in the container. */
function healthcheckCommand(service: Mapping, what: string): string[] {
  const healthcheck = mapping(service.healthcheck, `${what}.healthcheck`);
  const test = healthcheck.test;
  assert.ok(Array.isArray(test) && test[0] === "CMD", `${what}: healthcheck.test ["CMD", ...]`);
  return test.slice(1).map(String);
}

Deno.test({
  name: "compose.yaml workers serve health checks on loopback and metrics to the compose " +
    "network, and their healthcheck asks /readyz on that port",
  sanitizeOps: true,
  sanitizeResources: true,
  fn() {
    for (
      const [name, service] of [["worker", worker], ["cluster-worker", clusterWorker]] as const
    ) {
      const config = workerFlags(service, `services.${name}`);
      assert.ok(config.healthPort, `${name} should pass --health-port`);
      // The healthcheck runs in the worker's container: loopback is enough, and safest.
      assert.equal(config.healthHost, "127.0.0.1", `${name} health checks on loopback`);
      assert.ok(config.metricsPort, `${name} should pass --metrics-port`);
      assert.equal(
        config.metricsHost,
        "0.0.0.0",
        `${name}: Prometheus scrapes from another container`,
      );
      const check = healthcheckCommand(service, `services.${name}`).join(" ");
      assert.ok(
        check.includes(`http://127.0.0.1:${config.healthPort}/readyz`),
        `${name} healthcheck should ask /readyz on --health-port: ${check}`,
      );
    }
  },
});

Deno.test({
  name: "compose.yaml's worker healthcheck command passes against a consuming worker and fails " +
    "when nothing answers",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn(t) {
    await using scenario = await Scenario.open();
    const args = healthcheckCommand(worker, "services.worker");
    const config = workerFlags(worker, "services.worker");
    const check = async (port: number) => {
      const [program, ...rest] = args.map((arg) =>
        arg.replace(`127.0.0.1:${config.healthPort}`, `127.0.0.1:${port}`)
      );
      assert.equal(program, "deno", "the image has deno, not curl");
      const { code } = await new Deno.Command(Deno.execPath(), {
        args: rest,
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).output();
      return code;
    };
    await scenario.step(t, "a consuming worker: exit 0", async () => {
      const child = await scenario.startWorker("compose-health", ["--health-port", "0"]);
      const line = await child.waitForLine(/Health checks on http/);
      const port = Number(/127\.0\.0\.1:(\d+)\/livez/.exec(line)?.[1]);
      assert.equal(await check(port), 0);
    });
    await scenario.step(t, "nothing listening: not 0", async () => {
      const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const port = listener.addr.port;
      listener.close();
      assert.notEqual(await check(port), 0);
    });
    scenario.pass();
  },
});
