/**
 * What every command-line entry point does around its work: logging set-up, `--help`, and one
 * clear line plus a documented exit code for an expected failure.
 * @module
 */
import { TareasError } from "./errors.ts";
import { log, setupLogging } from "./log.ts";

/**
 * Runs an entry point: parses its flags, prints help, runs it, and turns a {@linkcode TareasError}
 * into one line on stderr and its exit code. Unexpected errors are bugs: logged with their stack,
 * exit code 1.
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
      code = error.exitCode;
    } else {
      log(name).fatal("Unexpected failure: {error}", { error });
      code = 1;
    }
  }
  Deno.exit(code);
}

/** What {@linkcode onStopSignals} installed; `remove()` uninstalls it. */
export interface StopSignals {
  /** Removes the signal listeners. */
  remove(): void;
}

/**
 * Listens for SIGINT and SIGTERM: the first calls `graceful` (finish what is in hand), a second
 * one calls `forced` (exit at once).
 */
export function onStopSignals(graceful: () => void, forced: () => void): StopSignals {
  let stopping = false;
  const listener = () => {
    if (stopping) return forced();
    stopping = true;
    graceful();
  };
  const signals = ["SIGINT", "SIGTERM"] as const;
  for (const signal of signals) Deno.addSignalListener(signal, listener);
  return { remove: () => signals.forEach((signal) => Deno.removeSignalListener(signal, listener)) };
}
