/**
 * The dashboard's dead letters: listed again (moved through, see `dead_letters.ts`) only when
 * their count changes or after an action, and made into the page's `dead` message only then; and
 * the actions on them (requeue one, requeue all, purge).
 * @module
 */
import type { DeadLetter, DeadLetters } from "../dead_letters.ts";
import { clip, MAX_TEXT } from "./_model.ts";

/** Dead letters listed. */
const MAX_DEAD = 200;

/** What an action did, for its JSON answer. */
export interface ActionResult {
  status: number;
  message: string;
}

/** The dead letters as the page shows them; see the module doc. */
export class DeadPanel {
  #letters: DeadLetters;
  #queue: string;
  #onChange: (message: string) => void;
  #dead: { total: number; letters: DeadLetter[]; error?: string } = { total: 0, letters: [] };
  #count = -1;
  #listing: Promise<void> | undefined;
  #message = "";

  /** `onChange` gets each new `dead` message. */
  constructor(letters: DeadLetters, queue: string, onChange: (message: string) => void) {
    this.#letters = letters;
    this.#queue = queue;
    this.#onChange = onChange;
  }

  /** The latest `dead` message ("" before the first listing): what a new page starts with. */
  get message(): string {
    return this.#message;
  }

  /** Lists the dead letters again when their count is not the one last listed. */
  setCount(count: number): void {
    // While a listing moves the dead letters through, one is briefly out of the count.
    if (this.#listing !== undefined || count === this.#count) return;
    this.#count = count;
    this.#list();
  }

  #list(): Promise<void> {
    return this.#listing ??= this.#letters.list({ limit: MAX_DEAD }).then((result) => {
      this.#dead = { total: result.total, letters: result.letters };
      this.#count = result.total;
    }, (cause) => {
      this.#dead = { ...this.#dead, error: firstLine(cause) };
    }).finally(() => {
      this.#listing = undefined;
      this.#message = `event: dead\ndata: ${JSON.stringify(this.#view())}\n\n`;
      this.#onChange(this.#message);
    });
  }

  #view() {
    const dead = this.#dead;
    return {
      total: dead.total,
      error: dead.error ?? null,
      letters: dead.letters.map((letter) => ({
        id: letter.id,
        reason: letter.reason,
        attempts: letter.attempts ?? null,
        deadAt: letter.deadAt ?? null,
        worker: letter.worker ?? null,
        size: letter.size,
        payload: letter.payload === undefined ? null : clip(JSON.stringify(letter.payload)),
        body: clip(
          letter.json === undefined
            ? new TextDecoder().decode(letter.body.subarray(0, MAX_TEXT))
            : JSON.stringify(letter.json),
        ),
      })),
    };
  }

  /**
   * Runs an action (`requeue` with `body.id`, `requeue-all`, `purge`); the letters are listed
   * again on the next count.
   */
  async act(action: string, body: Record<string, unknown>): Promise<ActionResult> {
    let message: string;
    if (action === "requeue") {
      if (typeof body.id !== "string" || body.id === "") {
        return { status: 400, message: 'Expected {"id": "..."}' };
      }
      const { requeued } = await this.#letters.requeue(new Set([body.id]));
      if (requeued === 0) return { status: 404, message: `No dead letter with id ${body.id}` };
      message = `Requeued ${requeued} to ${this.#queue}`;
    } else if (action === "requeue-all") {
      message = `Requeued ${(await this.#letters.requeue("all")).requeued} to ${this.#queue}`;
    } else {
      message = `Deleted ${await this.#letters.purge()} dead letters`;
    }
    this.#count = -1;
    return { status: 200, message };
  }

  /** Waits for a listing under way, then closes the connection. Idempotent. */
  async close(): Promise<void> {
    await Promise.allSettled([this.#listing, this.#letters.close()]);
  }
}

/** The first line of an error's message. */
export function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split("\n")[0]!;
}
