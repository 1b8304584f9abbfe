/**
 * What every command-line entry point does around its work: logging set-up, `--help`, and one
 * clear line plus a documented exit code for an expected failure.
 * @module
 */
import { ConfigError, TareasError, UsageError } from "../core/errors.ts";
import { log, setupLogging } from "../core/log.ts";

/**
 * The exit code of a command that failed with `error`: 2 for a {@linkcode UsageError} or a
 * {@linkcode ConfigError} (the command line or the setup must change), 1 for any other failure.
 * A code a command decides from its outcome (`produce --wait` exits 3 when a task was
 * dead-lettered) is returned by its `run`, not thrown.
 *
 * @example
 * ```ts
 * exitCodeOf(new UsageError("Invalid --count")); // 2
 * ```
 */
export function exitCodeOf(error: unknown): 1 | 2 {
  return error instanceof UsageError || error instanceof ConfigError ? 2 : 1;
}

/**
 * Runs an entry point: parses its flags, prints help, runs it, and turns a {@linkcode TareasError}
 * into one line on stderr and its exit code ({@linkcode exitCodeOf}). Unexpected errors are bugs:
 * logged with their stack, exit code 1.
 */
export async function runMain<C>(
  name: string,
  options: {
    parse: () => C | "help";
    help: string;
    run: (config: C) => Promise<number>;
    /** Log level when `LOG_LEVEL` is not set. @default {"info"} */
    logLevel?: string;
  },
): Promise<never> {
  let code: number;
  try {
    const config = options.parse();
    if (config === "help") {
      console.log(options.help);
      Deno.exit(0);
    }
    await setupLogging({ level: Deno.env.get("LOG_LEVEL") ?? options.logLevel });
    code = await options.run(config);
  } catch (error) {
    if (error instanceof TareasError) {
      console.error(`${name}: ${error.message}`);
      code = exitCodeOf(error);
    } else {
      log(name).fatal("Unexpected failure: {error}", { error });
      code = 1;
    }
  }
  Deno.exit(code);
}

/**
 * Signals this close after the first belong to the same Ctrl-C: a terminal sends SIGINT to the
 * whole foreground process group and `deno task` forwards one more to its child, a few
 * milliseconds apart. A person pressing Ctrl-C again takes longer than this.
 */
export const SAME_SIGNAL_MS = 500;

/** What {@linkcode onStopSignals} installed; `remove()` uninstalls it. */
export interface StopSignals {
  /** Removes the signal listeners. */
  remove(): void;
}

/**
 * Listens for SIGINT and SIGTERM: the first calls `graceful` (finish what is in hand); another
 * one more than {@linkcode SAME_SIGNAL_MS} later calls `forced` (exit at once). `remove()` right
 * after a signal keeps listening (and ignoring) until that time has passed.
 */
export function onStopSignals(graceful: () => void, forced: () => void): StopSignals {
  let first: number | undefined;
  const listener = () => {
    const now = performance.now();
    if (first === undefined) {
      first = now;
      return graceful();
    }
    if (now - first > SAME_SIGNAL_MS) forced();
  };
  const signals = ["SIGINT", "SIGTERM"] as const;
  for (const signal of signals) Deno.addSignalListener(signal, listener);
  const detach = () => signals.forEach((signal) => Deno.removeSignalListener(signal, listener));
  return {
    remove: () => {
      // The copy of a Ctrl-C that `deno task` forwards may still be on its way: without a
      // listener it would kill the program (exit 130) while it prints its last lines.
      const since = first === undefined ? Infinity : performance.now() - first;
      if (since >= SAME_SIGNAL_MS) return detach();
      Deno.unrefTimer(setTimeout(detach, SAME_SIGNAL_MS - since));
    },
  };
}
