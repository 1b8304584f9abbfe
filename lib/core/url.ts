/**
 * Broker URLs: parsing (one URL, or a comma-separated list of a cluster's nodes), and redaction
 * so that a password is never printed, whatever it contains. Low level: the connection, the
 * command lines and the test harness use it.
 *
 * The user info of a URL runs from `://` to its last `@`, so a password may hold a raw `/`, `@`,
 * `#`, `?` or `,`; percent-encoded characters (`%2F`, UTF-8 such as `%C3%A4`) are decoded. A list
 * is split at each `,scheme://` that follows a complete URL, so even `,amqp://` may be part of a
 * password (but not after an `@` in it: percent-encode that `@` as `%40`).
 *
 * Redaction trusts nothing: it hides everything from the first `:` of the user info to the last
 * `@`, and when there is no `@`, anything after the host but a port, to the end of the text (a
 * password whose `@` is missing). The only passwords it cannot recognise are those that read as
 * something else: `amqp://user:5672` without `@host` is host "user", port 5672.
 * @module
 */
import { UsageError } from "./errors.ts";
import { printable } from "./text.ts";

/**
 * Broker URL used when none is given (`AMQP_URL` unset).
 *
 * @example
 * ```ts
 * await using producer = await createProducer({ url: Deno.env.get("AMQP_URL") ?? DEFAULT_URL });
 * ```
 */
export const DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672";

/** One broker node to connect to, with its credentials decoded. */
export interface BrokerAddress {
  /** `amqp` or `amqps` (TLS). */
  protocol: "amqp" | "amqps";
  /** Host name or IP address, without brackets. */
  hostname: string;
  /** TCP port. */
  port: number;
  /** User name, decoded (`guest` when the URL has none). */
  username: string;
  /** Password, decoded. Never print it. */
  password: string;
  /** Virtual host, decoded (`/` when the URL has none). */
  vhost: string;
  /** `host:port`, naming the node in events and logs. */
  node: string;
  /** The URL with its password replaced by `***`: safe to print. */
  redacted: string;
}

/**
 * Parses a broker URL, or a comma-separated list of them (a cluster's nodes), into addresses.
 * `what` names the setting in error messages.
 *
 * @throws {UsageError} for anything but a list of distinct, well-formed amqp(s) URLs; the message
 *   is one line and never contains a password.
 * @example
 * ```ts
 * parseBrokerUrls("amqp://u:p@host1:5672,amqp://u:p@host2:5672").map((a) => a.node);
 * // ["host1:5672", "host2:5672"]
 * ```
 */
export function parseBrokerUrls(text: string, what = "broker URL"): BrokerAddress[] {
  const entries = splitList(text, what);
  const addresses = entries.map((entry) => parseBrokerUrl(entry, what));
  const seen = new Set<string>();
  for (const address of addresses) {
    const key = `${address.hostname.toLowerCase()}:${address.port}`;
    if (seen.has(key)) {
      throw new UsageError(
        `Invalid ${what} "${redactUrl(text)}": it lists ${address.node} more than once`,
      );
    }
    seen.add(key);
  }
  return addresses;
}

/**
 * Parses one broker URL.
 *
 * @throws {UsageError} when it is not a well-formed amqp(s) URL; the message never contains a
 *   password.
 */
export function parseBrokerUrl(text: string, what = "broker URL"): BrokerAddress {
  const redacted = redactUrl(text);
  const fail = (why: string) => new UsageError(`Invalid ${what} "${redacted}": ${why}`);
  const scheme = /^(amqps?):\/\//i.exec(text.trim());
  if (!scheme) throw fail("expected amqp:// or amqps://");
  const protocol = scheme[1]!.toLowerCase() as "amqp" | "amqps";
  const rest = text.trim().slice(scheme[0].length);
  const at = rest.lastIndexOf("@");
  const userinfo = at === -1 ? undefined : rest.slice(0, at);
  let parsed: URL;
  try {
    parsed = new URL(`${protocol}://${rest.slice(at + 1)}`);
  } catch {
    throw fail("not a URL");
  }
  if (parsed.hostname === "") throw fail("no host");
  if (parsed.username !== "" || parsed.password !== "") throw fail("not a URL");
  let username = "guest";
  let password = "guest";
  if (userinfo !== undefined) {
    const colon = userinfo.indexOf(":");
    username = decode(
      colon === -1 ? userinfo : userinfo.slice(0, colon),
      () => fail("the user name has invalid percent-encoding"),
    );
    password = colon === -1
      ? ""
      : decode(userinfo.slice(colon + 1), () => fail("the password has invalid percent-encoding"));
  }
  const path = parsed.pathname.replace(/^\//, "");
  const vhost = path === "" ? "/" : decode(path, () =>
    fail(
      "the virtual host has invalid " +
        "percent-encoding",
    ));
  const port = parsed.port === "" ? (protocol === "amqps" ? 5671 : 5672) : Number(parsed.port);
  const hostname = parsed.hostname.replace(/^\[(.*)\]$/, "$1");
  return {
    protocol,
    hostname,
    port,
    username,
    password,
    vhost,
    node: `${parsed.hostname}:${port}`,
    redacted,
  };
}

/**
 * Replaces the password of a URL (or of each URL of a list) with `***`, so it can be printed;
 * control characters are escaped. Works on anything, well-formed or not: everything between the
 * first `:` after `://` and the last `@` is hidden; without an `@`, anything after a host but a
 * port (`host:5672`) may be a password whose `@` is missing, and is hidden from its `:` on.
 *
 * @example
 * ```ts
 * redactUrl("amqp://guest:secret@host:5672"); // "amqp://guest:***@host:5672"
 * redactUrl("amqp://guest:Sl/ash@host"); // "amqp://guest:***@host"
 * redactUrl("amqp://guest:secret127.0.0.1:5672"); // "amqp://guest:***"
 * ```
 */
export function redactUrl(text: string): string {
  return printable(splitUrls(text).map((entry) => redactEntry(entry).shown).join(","));
}

/** `scheme://` at the start of an entry of a list. */
const SCHEME = /^\s*[a-z][a-z0-9+.-]*:\/\//i;

/**
 * An authority without user info: a host (or `[IPv6]`), then a numeric port or nothing, then the
 * path, query or fragment, or the end (an empty entry of a list, `h1:5672,,`, is refused later).
 */
const HOST_PORT = /^(?:\[[^\]]*\]|[^:/?#@[\],]*)(?::\d+)?(?:[/?#]|[,\s]*$)/;

/**
 * One entry of a list, redacted; `open` when it is hidden up to its end (a password whose `@` is
 * missing), so that the next piece of a list may still be part of that password.
 */
function redactEntry(entry: string): { shown: string; open: boolean } {
  let shown = "";
  let text = entry;
  let at = entry.lastIndexOf("@"); // In `text`, then in `rest`; none after the first part.
  for (;;) {
    const head = SCHEME.exec(text)?.[0] ?? "";
    const rest = text.slice(head.length);
    at -= head.length;
    let tail: string;
    if (at >= 0) {
      // Without a scheme, where the user name ends is anyone's guess: hide it too.
      const colon = rest.indexOf(":");
      if (head === "") shown += "***";
      else if (colon === -1 || colon > at) shown += head + rest.slice(0, at);
      else shown += `${head}${rest.slice(0, colon)}:***`;
      tail = rest.slice(at);
    } else if (HOST_PORT.test(rest)) {
      shown += head;
      tail = rest;
    } else {
      // No "@", and a ":" followed by anything but a port: the start of a password whose "@" is
      // missing, and it may run to the end of the text (a raw "/" or "," in it).
      const colon = rest.indexOf(":");
      if (colon === -1) return { shown: shown + head + rest, open: false };
      return { shown: `${shown}${head}${rest.slice(0, colon)}:***`, open: true };
    }
    // A comma after the user info may start the next entry of a list, one without its scheme
    // (`amqp://h1,u:secret@h2`): redacted in turn.
    const comma = tail.indexOf(",");
    if (comma === -1 || /^[,\s]*$/.test(tail.slice(comma))) {
      return { shown: shown + tail, open: false };
    }
    shown += tail.slice(0, comma + 1);
    text = tail.slice(comma + 1);
    at = -1;
  }
}

/**
 * Splits a list at the commas that start a new URL (`scheme://`), unless what comes before is a
 * password missing its `@` (`amqp://u:pa,amqp://ss@host` is one URL whose password holds a comma):
 * a comma inside a password stays with it. The entries joined with "," give back `text`.
 */
function splitUrls(text: string): string[] {
  const entries: string[] = [];
  let open: boolean | undefined; // Whether the last entry is open, once worked out.
  for (const piece of text.split(",")) {
    const last = entries.length - 1;
    if (last >= 0 && (!SCHEME.test(piece) || (open ??= redactEntry(entries[last]!).open))) {
      entries[last] += `,${piece}`;
      // Only an "@" (ending user info) or a "]" (closing an IPv6 host) can close an open entry;
      // not working it out again keeps a long list linear.
      if (open !== true || /[@\]]/.test(piece)) open = undefined;
    } else {
      entries.push(piece);
      open = undefined;
    }
  }
  return entries;
}

/** {@linkcode splitUrls}, refusing an empty entry. */
function splitList(text: string, what: string): string[] {
  const entries = splitUrls(text);
  // A comma directly followed by another URL, or by nothing, leaves an empty entry.
  if (entries.some((entry) => entry.trim() === "" || /,\s*$/.test(entry))) {
    throw new UsageError(`Invalid ${what} "${redactUrl(text)}": the list has an empty entry`);
  }
  return entries.map((entry) => entry.trim());
}

function decode(text: string, invalid: () => Error): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw invalid();
  }
}
