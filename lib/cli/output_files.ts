/**
 * The files `produce --wait` writes: `--timeline` (once, at the end) and `--results` (a line per
 * task as it ends). `deno task produce` may write only under the project's directory, so both are
 * checked before anything is published.
 * @module
 */
import { TareasError, UsageError } from "../core/errors.ts";
import type { TaskResult } from "../core/results.ts";
import { printable } from "../core/text.ts";

/**
 * Fails before anything is published when `file` could not be written: `deno task produce` may
 * only write in the project's directory.
 *
 * @throws {UsageError} naming the flag, the file and what to do instead.
 */
export async function checkWritable(flag: string, file: string): Promise<void> {
  const { state } = await Deno.permissions.query({ name: "write", path: file });
  if (state !== "granted") {
    throw new UsageError(
      `Cannot write ${flag} ${printable(file)}: deno task produce may only write in the ` +
        "project's directory; give a file there, or run deno run --allow-write producer.ts",
    );
  }
}

/**
 * The line of `--results` for a task's result: `{"id","status":"completed","result"}` or
 * `{"id","status":"dead","reason"}`, and a newline.
 *
 * @example
 * ```ts
 * resultLine({ taskId: "a", status: "completed", result: 2 }); // '{"id":"a","status":"completed","result":2}\n'
 * ```
 */
export function resultLine(result: TaskResult): string {
  const { taskId: id, ...outcome } = result;
  return `${JSON.stringify({ id, ...outcome })}\n`;
}

/**
 * The `--results` file: created (emptied) when opened, then one line per task result, written
 * in order as they come. Lines that come while a write is under way go out together in the next
 * write.
 */
export class ResultsFile implements AsyncDisposable {
  #file: Deno.FsFile;
  #path: string;
  #queued: string[] = [];
  #writing: Promise<void> | undefined;
  #written = 0;
  #failure: TareasError | undefined;
  #failed = Promise.withResolvers<never>();
  #closing: Promise<void> | undefined;

  /**
   * Creates (or empties) `path`.
   *
   * @throws {UsageError} when `deno task produce` may not write there, or it cannot be created.
   */
  static async open(path: string): Promise<ResultsFile> {
    await checkWritable("--results", path);
    try {
      return new ResultsFile(
        await Deno.open(path, { write: true, create: true, truncate: true }),
        path,
      );
    } catch (error) {
      throw new UsageError(
        `Cannot write --results ${printable(path)}: ${printable((error as Error).message)}`,
        { cause: error },
      );
    }
  }

  private constructor(file: Deno.FsFile, path: string) {
    this.#file = file;
    this.#path = path;
    this.#failed.promise.catch(() => {}); // Reported by whoever awaits `failed`.
  }

  /** Lines written to the file so far. */
  get written(): number {
    return this.#written;
  }

  /** Rejects with a {@linkcode TareasError} when a write fails (a full disk). */
  get failed(): Promise<never> {
    return this.#failed.promise;
  }

  /** Queues the line of `result`; it is written as soon as the writes before it are. */
  add(result: TaskResult): void {
    if (this.#failure !== undefined || this.#closing !== undefined) return;
    this.#queued.push(resultLine(result));
    this.#writing ??= this.#drain();
  }

  async #drain(): Promise<void> {
    const encoder = new TextEncoder();
    try {
      while (this.#queued.length > 0) {
        const lines = this.#queued;
        this.#queued = [];
        const bytes = encoder.encode(lines.join(""));
        for (let at = 0; at < bytes.length;) at += await this.#file.write(bytes.subarray(at));
        this.#written += lines.length;
      }
    } catch (error) {
      this.#failure = new TareasError(
        `Cannot write --results ${printable(this.#path)}: ${printable((error as Error).message)}`,
        { cause: error },
      );
      this.#failed.reject(this.#failure);
    } finally {
      this.#writing = undefined;
    }
  }

  /** Writes what is queued, then closes the file. Idempotent. */
  close(): Promise<void> {
    return this.#closing ??= (async () => {
      await this.#writing;
      this.#file.close();
    })();
  }

  /** Same as {@linkcode ResultsFile.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
