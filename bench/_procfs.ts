/**
 * What the benchmark reads from Linux's `/proc`: a process's CPU time (user + system, all its
 * threads), its memory (`VmRSS`, `VmHWM`), and which process listens on a local TCP port (to find
 * the broker's `beam.smp` and `redis-server`). Elsewhere than Linux every reader fails or returns
 * `undefined`, and the report says the figure was not measured.
 * @module
 */

let ticksPerSecond: Promise<number> | undefined;

/** The kernel's clock ticks per second (`getconf CLK_TCK`; 100 when that cannot be run). */
export function clockTicksPerSecond(): Promise<number> {
  ticksPerSecond ??= (async () => {
    try {
      const out = await new Deno.Command("getconf", {
        args: ["CLK_TCK"],
        stdout: "piped",
        stderr: "null",
      }).output();
      const value = Number(new TextDecoder().decode(out.stdout).trim());
      return out.success && Number.isInteger(value) && value > 0 ? value : 100;
    } catch {
      return 100;
    }
  })();
  return ticksPerSecond;
}

/** `utime + stime` in clock ticks from the text of a `/proc/<pid>/stat` file. */
export function parseCpuTicks(stat: string): number {
  // Fields after "(comm) ": state is field 3, utime field 14, stime field 15.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) {
    throw new Error(`Cannot read utime and stime from a /proc stat line: ${stat.slice(0, 80)}`);
  }
  return utime + stime;
}

/**
 * CPU seconds (user + system, every thread) that process `pid` has used since it started, from
 * `/proc/<pid>/stat`. The resolution is one clock tick (10 ms on Linux).
 *
 * @throws {Deno.errors.NotFound} when the process has exited and been reaped.
 */
export async function readCpuSeconds(pid: number): Promise<number> {
  const ticks = parseCpuTicks(await Deno.readTextFile(`/proc/${pid}/stat`));
  return ticks / await clockTicksPerSecond();
}

/**
 * This process's own `utime + stime` in clock ticks, read synchronously (for a child to print with
 * a timestamp); `undefined` where there is no `/proc`.
 */
export function ownCpuTicks(): number | undefined {
  try {
    return parseCpuTicks(Deno.readTextFileSync("/proc/self/stat"));
  } catch {
    return undefined;
  }
}

/** The line a publisher prints at its first publish: `bench publishing <epoch ms> <CPU ticks>`. */
export function publishingLine(at: number): string {
  return `bench publishing ${at} ${ownCpuTicks() ?? "-"}`;
}

/** The sum of {@linkcode readCpuSeconds} over `pids`. */
export async function readCpuSecondsOf(pids: readonly number[]): Promise<number> {
  const each = await Promise.all(pids.map(readCpuSeconds));
  return each.reduce((a, b) => a + b, 0);
}

/** A field in KiB (such as `VmRSS` or `VmHWM`) from the text of a `/proc/<pid>/status` file. */
export function parseStatusKiB(status: string, field: string): number {
  const match = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, "m").exec(status);
  if (!match) throw new Error(`No ${field} in a /proc status file`);
  return Number(match[1]);
}

/** Reads `field` (`VmRSS`, `VmHWM`, …) of process `pid` from `/proc/<pid>/status`, in KiB. */
export async function readStatusKiB(pid: number, field: string): Promise<number> {
  return parseStatusKiB(await Deno.readTextFile(`/proc/${pid}/status`), field);
}

/** Reads the resident set size of a process from `/proc/<pid>/status`, in KiB. */
export function readRssKiB(pid: number): Promise<number> {
  return readStatusKiB(pid, "VmRSS");
}

/** A process found by {@linkcode findListener}. */
export interface ListeningProcess {
  /** Its process id. */
  pid: number;
  /** Its command name (`/proc/<pid>/comm`), such as `beam.smp`. */
  name: string;
}

/** Inodes of the sockets listening on TCP `port` (IPv4 and IPv6), from `/proc/net/tcp{,6}`. */
async function listeningInodes(port: number): Promise<Set<string>> {
  const inodes = new Set<string>();
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = await Deno.readTextFile(file);
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      // local_address is field 1 (ADDR:PORT in hex), st field 3 (0A = LISTEN), inode field 9.
      if (fields[1]?.endsWith(`:${hexPort}`) && fields[3] === "0A" && fields[9]) {
        inodes.add(fields[9]);
      }
    }
  }
  return inodes;
}

/**
 * The process listening on local TCP `port`, found through `/proc` (the socket's inode among the
 * process's open files): the system RabbitMQ's `beam.smp` for 5672, `redis-server` for 6379.
 * Returns `undefined` when there is none, or when this process may not read others' open files.
 */
export async function findListener(port: number): Promise<ListeningProcess | undefined> {
  const inodes = await listeningInodes(port);
  if (inodes.size === 0) return undefined;
  const targets = new Set([...inodes].map((inode) => `socket:[${inode}]`));
  try {
    for await (const entry of Deno.readDir("/proc")) {
      if (!/^\d+$/.test(entry.name)) continue;
      try {
        for await (const fd of Deno.readDir(`/proc/${entry.name}/fd`)) {
          const link = await Deno.readLink(`/proc/${entry.name}/fd/${fd.name}`).catch(() => "");
          if (targets.has(link)) {
            const pid = Number(entry.name);
            const name = (await Deno.readTextFile(`/proc/${pid}/comm`)).trim();
            return { pid, name };
          }
        }
      } catch {
        // Exited while we looked, or not ours to read.
      }
    }
  } catch {
    return undefined;
  }
  return undefined;
}

/** The port of a `amqp://`, `amqps://` or `redis://` URL on this machine, else `undefined`. */
export function localPort(url: string): number | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  const host = parsed.hostname.replace(/^\[(.*)\]$/, "$1");
  if (!["127.0.0.1", "localhost", "::1", ""].includes(host)) return undefined;
  if (parsed.port !== "") return Number(parsed.port);
  return { "amqp:": 5672, "amqps:": 5671, "redis:": 6379 }[parsed.protocol];
}

const listeners = new Map<number, Promise<ListeningProcess | undefined>>();

/**
 * The local process serving `url` (the broker of an `amqp://` URL, the Redis of a `redis://`
 * one), looked up once per port; `undefined` when the URL points at another machine or nothing
 * listens on this one.
 */
export function serverOf(url: string): Promise<ListeningProcess | undefined> {
  const port = localPort(url);
  if (port === undefined) return Promise.resolve(undefined);
  let found = listeners.get(port);
  if (!found) listeners.set(port, found = findListener(port));
  return found;
}

/**
 * CPU seconds of groups of processes over a window: {@linkcode CpuWindow.open} samples each
 * group, {@linkcode CpuWindow.close} samples again and returns the difference per group
 * (`undefined` for a group that has no process or one that exited in between).
 *
 * @example
 * ```ts
 * const window = await CpuWindow.open({ consumers: [pid1, pid2], broker: [brokerPid] });
 * // ... the timed work ...
 * const { consumers, broker } = await window.close();
 * ```
 */
export class CpuWindow<K extends string> {
  #groups: Record<K, readonly number[]>;
  #start: Record<K, number | undefined>;

  private constructor(groups: Record<K, readonly number[]>, start: Record<K, number | undefined>) {
    this.#groups = groups;
    this.#start = start;
  }

  /** Samples every group now. */
  static async open<K extends string>(
    groups: Record<K, readonly number[]>,
  ): Promise<CpuWindow<K>> {
    return new CpuWindow(groups, await sample(groups));
  }

  /** Samples every group again and returns the CPU seconds each used since {@linkcode open}. */
  async close(): Promise<Partial<Record<K, number>>> {
    const end = await sample(this.#groups);
    const out: Partial<Record<K, number>> = {};
    for (const key of Object.keys(this.#groups) as K[]) {
      const a = this.#start[key];
      const b = end[key];
      if (a !== undefined && b !== undefined) out[key] = b - a;
    }
    return out;
  }
}

async function sample<K extends string>(
  groups: Record<K, readonly number[]>,
): Promise<Record<K, number | undefined>> {
  const out = {} as Record<K, number | undefined>;
  await Promise.all((Object.keys(groups) as K[]).map(async (key) => {
    const pids = groups[key];
    out[key] = pids.length === 0 ? undefined : await readCpuSecondsOf(pids).catch(() => undefined);
  }));
  return out;
}
