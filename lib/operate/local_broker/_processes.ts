/**
 * The processes of a node, read from Linux `/proc`: a process's descendants, whether it is alive,
 * and who mentions a node's name; plus sending a signal that may find the process gone.
 * @module
 */

/**
 * The pids of running processes whose command line or environment mentions `text` (Linux `/proc`;
 * zombies have neither): what a test checks to see that a node left no process behind. A node's
 * name is in the environment of all its processes (`RABBITMQ_NODENAME`), never on beam.smp's
 * command line.
 */
export async function processesMentioning(text: string): Promise<number[]> {
  const pids: number[] = [];
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    for (const file of ["cmdline", "environ"]) {
      try {
        if ((await Deno.readTextFile(`/proc/${entry.name}/${file}`)).includes(text)) {
          pids.push(Number(entry.name));
          break;
        }
      } catch {
        // Exited while we looked, or not ours to read.
      }
    }
  }
  return pids;
}

/** Processes descending from `pid`, children first (Linux `/proc`; empty elsewhere). */
export async function descendants(pid: number): Promise<number[]> {
  const parents = new Map<number, number>();
  try {
    for await (const entry of Deno.readDir("/proc")) {
      if (!/^\d+$/.test(entry.name)) continue;
      try {
        const ppid = parsePpid(await Deno.readTextFile(`/proc/${entry.name}/stat`));
        if (ppid !== undefined) parents.set(Number(entry.name), ppid);
      } catch {
        // The process exited while we looked.
      }
    }
  } catch {
    return [];
  }
  return treeBelow(pid, parents);
}

/** {@linkcode descendants}, synchronously: for the unload listener. */
export function descendantsSync(pid: number): number[] {
  const parents = new Map<number, number>();
  try {
    for (const entry of Deno.readDirSync("/proc")) {
      if (!/^\d+$/.test(entry.name)) continue;
      try {
        const ppid = parsePpid(Deno.readTextFileSync(`/proc/${entry.name}/stat`));
        if (ppid !== undefined) parents.set(Number(entry.name), ppid);
      } catch {
        // The process exited while we looked.
      }
    }
  } catch {
    return [];
  }
  return treeBelow(pid, parents);
}

function treeBelow(root: number, parents: Map<number, number>): number[] {
  const found: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const parent = queue.shift();
    for (const [pid, ppid] of parents) {
      if (ppid === parent && !found.includes(pid)) {
        found.push(pid);
        queue.push(pid);
      }
    }
  }
  return found;
}

/**
 * The fields of a `/proc/<pid>/stat` line after the `(comm)` field, which may hold spaces and
 * parentheses: the state letter first (R, S, T for stopped, Z...), then the parent pid.
 */
export function statFields(stat: string): string[] {
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
}

function parsePpid(stat: string): number | undefined {
  const ppid = Number(statFields(stat)[1]);
  return Number.isInteger(ppid) ? ppid : undefined;
}

/**
 * Resolves once `pid` is stopped (`true`: state T) or running again (`false`), or it has exited. A
 * signal is only acted on when the process is next scheduled: on a busy machine a beam.smp sent
 * SIGSTOP still showed R when read at once.
 *
 * @throws {Error} after `timeoutMs`.
 */
export async function untilStopped(
  pid: number,
  stopped: boolean,
  timeoutMs = 5_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    let state: string | undefined;
    try {
      state = statFields(await Deno.readTextFile(`/proc/${pid}/stat`))[0];
    } catch {
      return; // Exited.
    }
    if ((state === "T") === stopped) return;
    if (Date.now() > deadline) {
      throw new Error(`Process ${pid} is still ${state} after ${timeoutMs} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** The pid in a pid file, or undefined when it holds none. */
export function parsePid(text: string): number | undefined {
  const pid = Number(text.trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** Sends `signal` to `pid`, which may be gone already. */
export function killQuietly(pid: number, signal: Deno.Signal): void {
  try {
    Deno.kill(pid, signal);
  } catch {
    // Already gone.
  }
}

/**
 * Whether `pid` runs or is stopped: false once it has exited, zombie or not (Linux `/proc`). Every
 * thread counts: the main thread of a SIGKILLed beam.smp turns zombie while its other threads
 * still exit, holding the node's listening socket (a restart then found the old port "accepting").
 */
export function isAlive(pid: number): boolean {
  try {
    for (const thread of Deno.readDirSync(`/proc/${pid}/task`)) {
      const stat = Deno.readTextFileSync(`/proc/${pid}/task/${thread.name}/stat`);
      if (statFields(stat)[0] !== "Z") return true;
    }
  } catch {
    // Gone while we looked.
  }
  return false;
}
