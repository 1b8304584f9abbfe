/**
 * Loading `deno task work --handler PATH`: only the command line loads handler modules, and it
 * checks what a module exports before the worker connects. A module's default export is either
 * the handler of the `"default"` name (a function, as before named tasks), or an object of
 * handlers by task name (`{ resize, email }`), which becomes `createWorker({ handlers })`.
 * @module
 */
import { errorMessage, UsageError } from "../core/errors.ts";
import type { TaskHandler } from "../core/handler.ts";
import { MAX_ID_LENGTH } from "../core/task.ts";
import { printable } from "../core/text.ts";

/** What a handler module gives the worker: one handler, or handlers by task name. */
export type LoadedHandlers =
  | { handler: TaskHandler }
  | { handlers: Record<string, TaskHandler<never>> };

/**
 * Loads a handler module (path relative to the working directory, or a URL) and returns what its
 * default export gives the worker.
 *
 * @throws {UsageError} when the module cannot be loaded, or its default export is neither a
 *   function nor an object whose every value is a function.
 * @example
 * ```ts
 * const loaded = await loadHandler("./handlers.ts"); // export default { resize, email }
 * await using worker = await createWorker({ queue: "images", ...loaded });
 * ```
 */
export async function loadHandler(specifier: string): Promise<LoadedHandlers> {
  const shown = printable(specifier);
  let url: URL;
  try {
    url = /^[a-z]+:/i.test(specifier)
      ? new URL(specifier)
      : new URL(specifier, `file://${Deno.cwd()}/`);
  } catch {
    throw new UsageError(`Invalid --handler "${shown}": not a path or URL`);
  }
  let module: { default?: unknown };
  try {
    module = await import(url.href);
  } catch (error) {
    throw new UsageError(`Cannot load --handler "${shown}": ${printable(errorMessage(error))}`, {
      cause: error,
    });
  }
  return handlersOf(module.default, shown);
}

/**
 * What a module's default export gives the worker; see {@linkcode loadHandler}.
 *
 * @throws {UsageError} naming what is wrong with it.
 */
export function handlersOf(exported: unknown, shown: string): LoadedHandlers {
  if (typeof exported === "function") return { handler: exported as TaskHandler };
  const invalid = (why: string) =>
    new UsageError(
      `Invalid --handler "${shown}": its default export must be a function, or an object of ` +
        `functions by task name; ${why}`,
    );
  if (exported === undefined) throw invalid("it has none");
  if (!isPlainObject(exported)) throw invalid(`it is ${describe(exported)}`);
  const entries = Object.entries(exported);
  if (entries.length === 0) throw invalid("it is an empty object");
  for (const [name, handler] of entries) {
    if (name.length > MAX_ID_LENGTH) {
      throw invalid(`a task name is longer than ${MAX_ID_LENGTH} characters`);
    }
    if (typeof handler !== "function") {
      throw invalid(`"${printable(name)}" is ${describe(handler)}`);
    }
  }
  return { handlers: exported as Record<string, TaskHandler<never>> };
}

/** An object literal (or one made with `Object.create(null)`): not an array, a Map, a class. */
function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null) return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/** What a value is, in a few words. */
function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return `an instance of ${value.constructor?.name ?? "a class"}`;
  return `a ${typeof value}`;
}
