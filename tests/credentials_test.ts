/**
 * Broker URLs and credentials: no form of `AMQP_URL` prints its password; a UTF-8 password logs
 * in; a missing virtual host is a configuration error in one line, not an unreachable broker.
 */
import assert from "node:assert/strict";
import { canStartPrivateNode, startPrivateNode } from "../testing/broker.ts";
import { brokerUrl, freshQueue, run } from "../testing/scenario.ts";

const options = { sanitizeOps: true, sanitizeResources: true };

/** The broker's host and port, with `userinfo` and `path` of our choosing. */
async function urlWith(userinfo: string, path = ""): Promise<string> {
  const { host } = new URL(await brokerUrl());
  return `amqp://${userinfo}@${host}${path}`;
}

Deno.test({
  name: "no form of AMQP_URL prints its password, in text or JSON logs",
  ...options,
  async fn(t) {
    // Tried: raw /, @, #, ?, %, invalid percent-encoding, UTF-8 and a newline in the password.
    const passwords = [
      "Sl/ash_Zq83",
      "at@Sign9",
      "h#shTag9",
      "q?mark99",
      "pct%25ok9",
      "bad%ZZenc",
      "ünïcødé9",
      "new\nline9",
    ];
    for (const password of passwords) {
      for (const format of ["text", "json"]) {
        await t.step(`${JSON.stringify(password)}, ${format} logs`, async () => {
          const result = await run("producer.ts", ["--queue", freshQueue(), "--count", "1"], {
            AMQP_URL: await urlWith(`guest:${password}`),
            LOG_FORMAT: format,
          });
          const output = result.stdout + result.stderr;
          assert.equal(result.code, 2, output);
          for (const piece of password.split(/[/@#?%\n]/).filter((p) => p.length >= 3)) {
            assert.ok(!output.includes(piece), `"${piece}" printed:\n${output}`);
          }
          assert.match(output, /guest:\*\*\*@/);
        });
      }
    }
  },
});

Deno.test({
  name: "a user name with invalid percent-encoding is one line and exit 2, not a stack trace",
  ...options,
  async fn() {
    const result = await run("worker.ts", [], { AMQP_URL: await urlWith("us%ZZer:secret") });
    assert.equal(result.code, 2);
    assert.equal(
      result.stderr.trim(),
      `worker: Invalid AMQP_URL "${(await urlWith(
        "us%ZZer:***",
      ))}": the user name has invalid percent-encoding`,
    );
  },
});

Deno.test({
  name: "a virtual host that does not exist is a configuration error: one line, exit 2, no retries",
  ...options,
  async fn() {
    const vhost = `nope-${crypto.randomUUID().slice(0, 8)}`;
    // Tried: it was retried as "unreachable" four times, then exit 1 with an AMQP frame dump.
    const result = await run("worker.ts", [], {
      AMQP_URL: await urlWith("guest:guest", `/${vhost}`),
      LOG_LEVEL: "warning",
    });
    const lines = result.stderr.trim().split("\n");
    assert.equal(result.code, 2, result.stderr);
    assert.equal(lines.length, 1, result.stderr);
    assert.match(
      lines[0]!,
      new RegExp(
        `^worker: The broker at .* refused access to virtual host "${vhost}": it does not ` +
          'exist, or user "guest" has no permissions on it$',
      ),
    );
  },
});

Deno.test({
  name: "a UTF-8 password with a slash, percent-encoded in AMQP_URL, logs in",
  // Needs a private node to create the user on (CI installs rabbitmq-server).
  ignore: !await canStartPrivateNode(),
  ...options,
  async fn() {
    await using node = await startPrivateNode();
    // Tried: amqplib's unescape mangled "p%C3%A4%2Fss" and the broker refused it.
    await node.rabbitmqctl(["add_user", "usér", "pä/ss"]);
    await node.rabbitmqctl(["set_permissions", "-p", "/", "usér", ".*", ".*", ".*"]);
    const result = await run("producer.ts", ["--queue", freshQueue(), "--count", "1"], {
      AMQP_URL: `amqp://us%C3%A9r:p%C3%A4%2Fss@127.0.0.1:${node.port}`,
    });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /all confirmed by the broker/);
    assert.doesNotMatch(result.stderr, /p%C3%A4|pä\/ss/);
  },
});
