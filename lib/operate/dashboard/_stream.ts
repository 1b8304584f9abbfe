/**
 * The pages' Server-Sent Events streams: every message goes to every open page, encoded once for
 * all, and a page that stops reading is dropped before it holds more than
 * {@linkcode MAX_UNSENT_BYTES}.
 * @module
 */
import type { Logger } from "../../deps/logtape.ts";
import { SECURITY_HEADERS } from "./_http.ts";

/**
 * Most bytes queued for one page and not yet taken by the server. A page that stops reading (a
 * frozen tab, a client that never reads) first fills its socket's buffers, then this queue; past
 * this bound it is dropped: its stream is ended, which frees what was queued and closes the
 * connection (an EventSource reconnects by itself, and starts again from a fresh state). A state
 * message is about 0.2 KB per bar of the timeline: 1 MB with 5000 task events shown (measured),
 * more with long failure reasons. A page that reads keeps up far below this.
 */
export const MAX_UNSENT_BYTES = 4 * 1024 * 1024;

/** How often a comment goes to every page, so that proxies keep an idle stream open, in ms. */
const KEEP_ALIVE_MS = 15_000;

/** Ends the stream of a page that stopped reading (see {@linkcode MAX_UNSENT_BYTES}). */
export class StoppedReading extends Error {
  /** The error a dropped page's stream is ended with. */
  constructor() {
    super("The page stopped reading");
    this.name = "StoppedReading";
  }
}

/** The open pages' event streams. */
export class PageStreams {
  #clients = new Set<ReadableStreamDefaultController<Uint8Array>>();
  #encoder = new TextEncoder();
  #logger: Logger;
  #keepAlive: ReturnType<typeof setInterval>;

  /** No page yet; keeps every page's stream alive with a comment every 15 s. */
  constructor(logger: Logger) {
    this.#logger = logger;
    this.#keepAlive = setInterval(() => this.sendAll(": keep-alive\n\n"), KEEP_ALIVE_MS);
  }

  /** Queues one message for every page; every page's queue shares the same bytes. */
  sendAll(text: string): void {
    if (this.#clients.size === 0) return;
    const chunk = this.#encoder.encode(text);
    for (const client of this.#clients) this.#send(client, chunk);
  }

  #send(client: ReadableStreamDefaultController<Uint8Array>, chunk: Uint8Array): void {
    // desiredSize is MAX_UNSENT_BYTES less the bytes queued; null once the stream errored.
    const room = client.desiredSize;
    if (room !== null && room < 0) {
      this.#clients.delete(client);
      // Erroring the stream drops what is queued and makes the server abort the response.
      client.error(new StoppedReading());
      this.#logger.info("Dropped a page that stopped reading: {bytes} bytes not sent", {
        bytes: MAX_UNSENT_BYTES - room,
      });
      return;
    }
    try {
      client.enqueue(chunk);
    } catch {
      this.#clients.delete(client); // closed by the browser
    }
  }

  /** A new page's stream, starting with `first()` (made once the page is counted in). */
  open(first: () => string): Response {
    const clients = this.#clients;
    const encoder = this.#encoder;
    let self: ReadableStreamDefaultController<Uint8Array>;
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        self = controller;
        clients.add(controller);
        controller.enqueue(encoder.encode(first()));
      },
      cancel() {
        clients.delete(self);
      },
      // Counted in bytes, so that desiredSize tells how much is queued (see MAX_UNSENT_BYTES).
    }, new ByteLengthQueuingStrategy({ highWaterMark: MAX_UNSENT_BYTES }));
    return new Response(body, {
      headers: { "content-type": "text/event-stream; charset=utf-8", ...SECURITY_HEADERS },
    });
  }

  /** Ends every page's stream and stops the keep-alive. Idempotent. */
  close(): void {
    clearInterval(this.#keepAlive);
    for (const client of this.#clients) {
      try {
        client.close();
      } catch {
        // Already closed by the browser.
      }
    }
    this.#clients.clear();
  }
}
