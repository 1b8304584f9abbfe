/**
 * What the private nodes need of this machine: the `rabbitmq-server` script, free ports, whether a
 * port accepts connections, and the environment (read without failing when it is not allowed).
 * @module
 */

import { PrivateNodeError } from "./private_node.ts";

/** Where Debian's package puts the server script that runs as the calling user. */
export const DEBIAN_SERVER_PATH = "/usr/lib/rabbitmq/bin/rabbitmq-server";

/**
 * Ports a private node must never take: the main node's AMQP, TLS, management and distribution
 * ports, and epmd's.
 */
const RESERVED_PORTS = new Set([4369, 5671, 5672, 15672, 25672]);

/** The ports that `rabbitmqctl` itself listens on (`RABBITMQ_CTL_DIST_PORT_MIN` to `_MAX`). */
const CTL_DIST_PORTS = { min: 35672, max: 35682 };

/** Whether `hostname:port` accepts a TCP connection within `timeoutMs`. */
export async function acceptsConnection(
  hostname: string,
  port: number,
  timeoutMs: number,
): Promise<boolean> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    const conn = await Deno.connect({ hostname, port, signal: controller.signal });
    conn.close();
    return true;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The server script to run: `explicit` if it exists, else Debian's, else `rabbitmq-server` on the
 * PATH, as a shell finds it (the shell reads the PATH it inherits; this process does not).
 */
export async function findServer(explicit: string | undefined): Promise<string | undefined> {
  if (explicit !== undefined) return await isFile(explicit) ? explicit : undefined;
  if (await isFile(DEBIAN_SERVER_PATH)) return DEBIAN_SERVER_PATH;
  try {
    const { success, stdout } = await new Deno.Command("/bin/sh", {
      args: ["-c", "command -v rabbitmq-server"],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).output();
    const found = new TextDecoder().decode(stdout).trim();
    return success && found.startsWith("/") && await isFile(found) ? found : undefined;
  } catch {
    return undefined; // Not allowed to run a shell.
  }
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

/**
 * A port on 127.0.0.1 that was free a moment ago, none of the main node's or epmd's, none of
 * `rabbitmqctl`'s and none of `taken` (ports already handed to another node).
 */
export function freePort(taken: number[] = []): number {
  for (let attempt = 0; attempt < 50; attempt++) {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const { port } = listener.addr as Deno.NetAddr;
    listener.close();
    const ctlPort = port >= CTL_DIST_PORTS.min && port <= CTL_DIST_PORTS.max;
    if (!RESERVED_PORTS.has(port) && !ctlPort && !taken.includes(port)) return port;
  }
  // Unreachable in practice: the kernel hands out ports from a range of thousands.
  throw new PrivateNodeError("Cannot find a free port on 127.0.0.1: 50 attempts failed");
}

/**
 * An environment variable, or undefined when it is unset or reading it is not granted: asked
 * first, so that a program run at a terminal without the permission never prompts for it.
 */
export function envVar(key: string): string | undefined {
  if (Deno.permissions.querySync({ name: "env", variable: key }).state !== "granted") {
    return undefined;
  }
  return Deno.env.get(key);
}

/** The environment, or undefined when reading all of it is not granted. */
export function envObject(): Record<string, string> | undefined {
  if (Deno.permissions.querySync({ name: "env" }).state !== "granted") return undefined;
  return Deno.env.toObject();
}

/** The directory part of `path`. */
export function dirname(path: string): string {
  const slash = path.lastIndexOf("/");
  return slash <= 0 ? "/" : path.slice(0, slash);
}

/** An Erlang cookie: 20 random capital letters. */
export function randomCookie(): string {
  const letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
  return Array.from(crypto.getRandomValues(new Uint8Array(20)))
    .map((byte) => letters[byte % letters.length])
    .join("");
}
