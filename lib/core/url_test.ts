import assert from "node:assert/strict";
import { UsageError } from "./errors.ts";
import { parseBrokerUrl, parseBrokerUrls, redactUrl } from "./url.ts";
import { printable } from "./text.ts";

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

/** A small seeded generator (mulberry32), so a failing case can be run again. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// What a password is made of: the URL's own delimiters, list separators and schemes, broken and
// valid percent-encoding, spaces, unicode, bidi and control characters.
// deno-fmt-ignore
const NASTY = [
  "@", ":", "/", ",", "#", "?", "%", " ", "[", "]", "amqp://", ",amqp://", ", amqps://",
  ",http://", "%zz", "%2", "%C3%A4", "%2C", "ü", "ñ", "日本", "😀", "\u202e", "\x1b[2J", "\n",
  "\r", "\t", "\0", "\x7f", "\x9b", "\\", "'", '"', "5672", "127.0.0.1",
];
const ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const SCHEME_IN = /,\s*[a-z][a-z0-9+.-]*:\/\//gi;

/**
 * The only forms left out: those that are themselves well-formed with another meaning, so no
 * parser can know a password is there. A URL missing its "@" reads as `user:pass@host` when the
 * password holds an "@" (its last one ends the user info), or as `host:port/path` when the
 * password starts with a number followed by "/", "?", "#" or nothing. In a list, a password
 * holding ",amqp://" after an "@", or after such a number, splits into a complete URL and the
 * next. An entry without its scheme, whose password starts with "//", reads as `user://…`.
 */
function ambiguous(password: string, missingAt: boolean, schemeless: boolean): boolean {
  if (schemeless && password.startsWith("//")) return true;
  const port = /^\d+(?:[/?#]|[,\s]*$)/;
  if (missingAt && (password.includes("@") || port.test(password))) return true;
  for (const match of password.matchAll(SCHEME_IN)) {
    const before = password.slice(0, match.index);
    if (before.includes("@") || port.test(before)) return true;
  }
  return false;
}

interface Generated {
  text: string;
  passwords: string[];
  /** The text with every password replaced by U+FFFF: what it may print. */
  skeleton: string;
  /** One well-formed URL, with its password as given. */
  wellFormed?: { password: string; hostname: string };
}

function generate(next: () => number): Generated {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
  const password = () => {
    let text = "";
    for (let n = 2 + Math.floor(next() * 8); n > 0; n--) {
      text += next() < 0.6 ? pick(NASTY) : pick([...ALNUM]);
    }
    // A run of letters and digits that must never be printed, wherever it lands.
    const secret = Array.from({ length: 6 }, () => pick([...ALNUM])).join("");
    const at = Math.floor(next() * (text.length + 1));
    return text.slice(0, at) + secret + text.slice(at);
  };
  const entries = 1 + Math.floor(next() * 3);
  const generated: Generated = { text: "", passwords: [], skeleton: "" };
  for (let i = 0; i < entries; i++) {
    // Half the entries well-formed around their password, the others broken anywhere.
    const clean = next() < 0.5;
    const scheme = pick([
      "amqp://",
      "amqps://",
      " amqp://",
      ...clean ? [] : ["http://", "", "amqp:/"],
    ]);
    const user = pick(["guest", "u", "", "us%C3%A9r", ...clean ? [] : ["us%ZZer"]]);
    const host = pick([
      "127.0.0.1",
      "rabbit-1",
      "[::1]",
      "h",
      ...clean ? [] : ["", "[::1", "ho st"],
    ]);
    const port = pick(["", ":5672", ":1", ...clean ? [] : [":99999", ":abc", ":"]]);
    const vhost = pick(["", "/", "/vh", "/%2F", ...clean ? [] : ["/%E0%A4", "?x=1", "#f"]]);
    const missingAt = !clean && next() < 0.5;
    let secret = password();
    while (ambiguous(secret, missingAt, scheme === "")) secret = password();
    const separator = i === 0 ? "" : pick([",", ", ", ",,", ","]);
    const before = `${separator}${scheme}${user}:`;
    const after = `${missingAt ? "" : "@"}${host}${port}${vhost}`;
    generated.text += before + secret + after;
    generated.passwords.push(secret);
    generated.skeleton += `${before}\uffff${after}`;
    if (entries === 1 && clean && !secret.includes("%")) {
      generated.wellFormed = { password: secret, hostname: host.replace(/^\[(.*)\]$/, "$1") };
    }
  }
  if (next() < 0.1) {
    const end = pick([",", ", ", ",amqp://"]);
    generated.text += end;
    generated.skeleton += end;
    delete generated.wellFormed;
  }
  return generated;
}

/** The reasons of a refused URL: fixed wording, but for the node named twice. */
const REASONS = new RegExp(
  "^(expected amqp:// or amqps://|not a URL|no host|the list has an empty entry|" +
    "the (user name|password|virtual host) has invalid percent-encoding|" +
    "it lists [^ ]+ more than once)$",
);

/** Windows of 4 characters of the password (raw and as printed) that `output` shows. */
function leaks(output: string, generated: Generated): string[] {
  const innocent = printable(generated.skeleton);
  const found = new Set<string>();
  for (const password of generated.passwords) {
    for (const form of [password, printable(password)]) {
      const chars = [...form];
      for (let i = 0; i + 4 <= chars.length; i++) {
        const window = chars.slice(i, i + 4).join("");
        if (output.includes(window) && !innocent.includes(window)) {
          found.add(window);
        }
      }
    }
  }
  return [...found];
}

Deno.test("fuzz: no URL or list, well-formed or not, prints any part of a password", () => {
  const seed = 23;
  const next = random(seed);
  let refused = 0;
  let parsed = 0;
  let checked = 0;
  for (let i = 0; i < 5_000; i++) {
    const generated = generate(next);
    const { text } = generated;
    const shown = [redactUrl(text)];
    try {
      const addresses = parseBrokerUrls(text, "AMQP_URL");
      parsed++;
      // A node name is its host, then a port of the text or the default one.
      for (const address of addresses) shown.push(address.redacted, address.hostname);
      if (generated.wellFormed) {
        checked++;
        assert.equal(addresses.length, 1, `one URL: ${JSON.stringify(text)}`);
        assert.equal(addresses[0]!.password, generated.wellFormed.password, JSON.stringify(text));
        assert.equal(addresses[0]!.hostname, generated.wellFormed.hostname, JSON.stringify(text));
      }
    } catch (error) {
      refused++;
      assert.ok(error instanceof UsageError, `case ${i} (seed ${seed}): ${error}`);
      assert.ok(!/[\n\r]/.test(error.message), error.message);
      assert.equal(generated.wellFormed, undefined, `refused: ${error.message}`);
      // The frame of the message is ours: what it quotes and its reason are checked.
      const [, quoted, reason] = /^Invalid AMQP_URL "(.*)": (.*)$/.exec(error.message) ?? [];
      assert.ok(quoted !== undefined && reason !== undefined, error.message);
      assert.match(reason, REASONS);
      shown.push(quoted, /^it lists (.*):\d+ more than once$/.exec(reason)?.[1] ?? "");
    }
    for (const output of shown) {
      assert.deepEqual(
        leaks(output, generated),
        [],
        `case ${i} (seed ${seed}): ${JSON.stringify(text)} printed as ${JSON.stringify(output)}`,
      );
    }
  }
  // Both paths were exercised.
  assert.ok(refused > 500 && parsed > 500, `refused ${refused}, parsed ${parsed}`);
  assert.ok(checked > 300, `${checked} well-formed URLs parsed`);
});

Deno.test("a URL missing its @ or with a list inside its password prints no part of it", () => {
  const cases: [string, string][] = [
    ["amqp://guest:Secret127.0.0.1:5672", "amqp://guest:***"],
    ["amqp://guest:Sl/ash127.0.0.1:5672/vh", "amqp://guest:***"],
    ["guest:Secret127.0.0.1:5672", "guest:***"],
    ["amqp:/guest:Secret@host", "***@host"],
    ["amqp:/guest:Secret127.0.0.1", "amqp:***"],
    ["amqp://guest:Se,amqp://cret@127.0.0.1", "amqp://guest:***@127.0.0.1"],
    ["amqp://h1:5672,amqp://u:p@h2/vh", "amqp://h1:5672,amqp://u:***@h2/vh"],
    ["amqp://[::1]:5672", "amqp://[::1]:5672"],
  ];
  for (const [url, redacted] of cases) assert.equal(redactUrl(url), redacted, url);
  const address = parseBrokerUrls("amqp://guest:Se,amqp://cret@127.0.0.1", "AMQP_URL");
  assert.deepEqual(address.map((a) => [a.password, a.node]), [
    ["Se,amqp://cret", "127.0.0.1:5672"],
  ]);
  assert.throws(
    () => parseBrokerUrls("amqp://guest:Secret127.0.0.1:5672", "AMQP_URL"),
    /^UsageError: Invalid AMQP_URL "amqp:\/\/guest:\*\*\*": not a URL/,
  );
});
