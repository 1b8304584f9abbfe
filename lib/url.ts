/**
 * Broker URLs: parsing (one URL, or a comma-separated list of a cluster's nodes), and redaction
 * so that a password is never printed, whatever it contains. Low level: the connection, the
 * command lines and the test harness use it.
 *
 * The user info of a URL runs from `://` to its last `@`, so a password may hold a raw `/`, `@`,
 * `#`, `?` or `,`; percent-encoded characters (`%2F`, UTF-8 such as `%C3%A4`) are decoded.
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
 * first `:` after `://` and the last `@` is hidden.
 *
 * @example
 * ```ts
 * redactUrl("amqp://guest:secret@host:5672"); // "amqp://guest:***@host:5672"
 * redactUrl("amqp://guest:Sl/ash@host"); // "amqp://guest:***@host"
 * ```
 */
export function redactUrl(text: string): string {
  return printable(
    text.split(/,(?=\s*[a-z][a-z0-9+.-]*:\/\/)/i).map(redactOne).join(","),
  );
}

function redactOne(url: string): string {
  const start = url.indexOf("://");
  const at = url.lastIndexOf("@");
  if (at === -1) return url;
  if (start === -1 || at < start) return `***${url.slice(at)}`;
  const userinfo = url.slice(start + 3, at);
  const colon = userinfo.indexOf(":");
  if (colon === -1) return url;
  return `${url.slice(0, start + 3)}${userinfo.slice(0, colon)}:***${url.slice(at)}`;
}

/**
 * Splits a list at the commas that start a new URL (`scheme://`; a comma inside a password
 * stays with it); an empty entry is an error.
 */
function splitList(text: string, what: string): string[] {
  const entries: string[] = [];
  for (const piece of text.split(",")) {
    if (/^\s*[a-z][a-z0-9+.-]*:\/\//i.test(piece) || entries.length === 0) entries.push(piece);
    else entries[entries.length - 1] += `,${piece}`;
  }
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
