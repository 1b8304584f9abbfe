import assert from "node:assert/strict";
import { UsageError } from "./errors.ts";
import { parseBrokerUrl, parseBrokerUrls, redactUrl } from "./url.ts";

Deno.test("a URL is parsed with its credentials decoded", () => {
  assert.deepEqual(parseBrokerUrl("amqp://guest:guest@127.0.0.1:5672"), {
    protocol: "amqp",
    hostname: "127.0.0.1",
    port: 5672,
    username: "guest",
    password: "guest",
    vhost: "/",
    node: "127.0.0.1:5672",
    redacted: "amqp://guest:***@127.0.0.1:5672",
  });
  const utf8 = parseBrokerUrl("amqps://us%C3%A9r:p%C3%A4%2Fss@[::1]/my%2Fvhost");
  assert.deepEqual(
    [utf8.protocol, utf8.hostname, utf8.port, utf8.username, utf8.password, utf8.vhost],
    ["amqps", "::1", 5671, "usér", "pä/ss", "my/vhost"],
  );
  assert.equal(parseBrokerUrl("amqp://host").username, "guest", "no credentials: guest");
  assert.equal(parseBrokerUrl("amqp://host/%2F").vhost, "/");
});

Deno.test("raw special characters in a password are part of it and never printed", async (t) => {
  const passwords = ["Sl/ash_Zq83", "a@b", "h#sh", "q?uery", "com,ma", "1/ss", "ü/ñ@x", "%zz"];
  for (const password of passwords) {
    await t.step(password, () => {
      const url = `amqp://guest:${password}@127.0.0.1:5672`;
      assert.equal(redactUrl(url), "amqp://guest:***@127.0.0.1:5672");
      try {
        const address = parseBrokerUrl(url);
        assert.equal(address.password, password, "taken literally");
        assert.equal(address.hostname, "127.0.0.1");
      } catch (error) {
        // Only invalid percent-encoding is refused, in a message without the password.
        assert.ok(error instanceof UsageError);
        assert.ok(!error.message.includes(password), error.message);
        assert.match(error.message, /the password has invalid percent-encoding/);
      }
    });
  }
});

Deno.test("redaction never prints a password, even in malformed URLs and lists", () => {
  const cases: [string, string][] = [
    ["amqp://u:secret@host", "amqp://u:***@host"],
    ["amqp://host:5672", "amqp://host:5672"],
    ["amqp://u@host", "amqp://u@host"],
    ["u:secret@host", "***@host"],
    ["http://u:secret@h", "http://u:***@h"],
    ["amqp://u:se:cret@ho st", "amqp://u:***@ho st"],
    ["amqp://u:a\nb@h", "amqp://u:***@h"],
    ["amqp://u\x1b[2J:x@h", "amqp://u\\x1b[2J:***@h"],
    ["amqp://a:s1@h1,amqp://b:s,2@h2", "amqp://a:***@h1,amqp://b:***@h2"],
  ];
  for (const [url, redacted] of cases) assert.equal(redactUrl(url), redacted);
});

Deno.test("a comma-separated list gives one address per node", () => {
  const list = parseBrokerUrls(
    "amqp://u:p@host1:5701, amqp://u:p,w@host2:5702,amqps://host3",
  );
  assert.deepEqual(list.map((a) => a.node), ["host1:5701", "host2:5702", "host3:5671"]);
  assert.equal(list[1]!.password, "p,w", "a comma in a password stays in it");
});

Deno.test("bad URLs and lists are one-line usage errors without the password", async (t) => {
  const cases: [string, RegExp][] = [
    ["http://u:secret@h", /expected amqp:\/\/ or amqps:\/\//],
    ["amqp://u:secret@h1,,amqp://u:secret@h2", /the list has an empty entry/],
    ["amqp://u:secret@h1,", /the list has an empty entry/],
    ["amqp://u:secret@h1,redis://h2", /expected amqp/],
    ["amqp://u:secret@h1:1,amqp://u:secret@H1:1", /lists H1:1 more than once/],
    ["amqp://us%ZZer:secret@h", /the user name has invalid percent-encoding/],
    ["amqp://u:secret@", /not a URL|no host/],
    ["amqp://u:secret@h:99999", /not a URL/],
  ];
  for (const [url, reason] of cases) {
    await t.step(url, () => {
      assert.throws(() => parseBrokerUrls(url, "AMQP_URL"), (error: unknown) => {
        assert.ok(error instanceof UsageError);
        assert.match(error.message, /^Invalid AMQP_URL "/);
        assert.match(error.message, reason);
        assert.ok(!error.message.includes("secret"), error.message);
        assert.ok(!error.message.includes("\n"));
        return true;
      });
    });
  }
});
