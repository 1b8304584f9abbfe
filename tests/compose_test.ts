/**
 * Checks compose.yaml's structure without Docker: the services, the broker's image, healthcheck and
 * credentials, and that the worker and producer run the same commands as the deno.json tasks.
 */
import assert from "node:assert/strict";
import { parse } from "yaml";

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

const compose = mapping(
  parse(await Deno.readTextFile(new URL("compose.yaml", root))),
  "compose.yaml",
);
const services = mapping(compose.services, "services");
const rabbitmq = mapping(services.rabbitmq, "services.rabbitmq");
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
    assert.deepEqual(Object.keys(services).sort(), ["producer", "rabbitmq", "worker"]);
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
    assert.equal(worker.container_name, undefined);
    assert.equal(worker.ports, undefined);
  },
});

Deno.test({
  name: "compose.yaml runs the same commands as the work and produce tasks, on files that exist",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    for (
      const [name, service, task] of [
        ["worker", worker, "work"],
        ["producer", producer, "produce"],
      ] as const
    ) {
      const args = command(service, `services.${name}`);
      assert.deepEqual(args, String(tasks[task]).trim().split(/\s+/), `${name} vs task ${task}`);
      const scripts = args.filter((arg) => arg.endsWith(".ts"));
      assert.equal(scripts.length, 1, `${name} should run one script: ${args.join(" ")}`);
      const script = scripts[0] ?? "";
      const stat = await Deno.stat(new URL(script, root)).catch(() => undefined);
      assert.ok(stat?.isFile, `${name} runs ${script}, which should exist in the repo`);
    }
  },
});
