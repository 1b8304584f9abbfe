/**
 * An `EventTarget` that knows which event types have listeners, so that its owner builds and
 * dispatches only the events someone listens to: dispatching an event costs about a microsecond,
 * as much as the rest of a no-op task's bookkeeping.
 *
 * It keeps the listeners the way `EventTarget` does (one per listener and capture flag, so adding
 * one twice registers it once) and forgets those `EventTarget` drops by itself: a `once` listener
 * after its event, a listener whose `signal` aborted.
 * @module
 */

type Listener = EventListenerOrEventListenerObject;

/** An `EventTarget` that knows its listeners by type; see the module doc. */
export class ListenedEventTarget extends EventTarget {
  /** Registered listeners by type, each with what forgets it (for `once` and `signal`). */
  #listeners = new Map<string, Map<string, Map<Listener, () => void>>>();

  /** Whether a listener is registered for `type`. */
  listens(type: string): boolean {
    return this.#listeners.has(type);
  }

  /** Registers a listener, as `EventTarget` does, and keeps track of it. */
  override addEventListener(
    type: string,
    listener: Listener | null,
    options?: boolean | AddEventListenerOptions,
  ): void {
    super.addEventListener(type, listener, options);
    const { once, signal } = typeof options === "object" ? options : {};
    const capture = Boolean(typeof options === "object" ? options.capture : options);
    if (listener === null || signal?.aborted) return;
    const byCapture = this.#listeners.get(type) ?? new Map<string, Map<Listener, () => void>>();
    const key = String(capture);
    const registered = byCapture.get(key) ?? new Map<Listener, () => void>();
    if (registered.has(listener)) return; // EventTarget ignores it too.
    const forget = () => this.#forget(type, key, listener);
    const onEvent = once ? forget : undefined;
    // Runs after the listener (added later), so a `once` listener is forgotten once it has run.
    if (onEvent !== undefined) super.addEventListener(type, onEvent, { capture, once: true });
    signal?.addEventListener("abort", forget, { once: true });
    registered.set(listener, () => {
      if (onEvent !== undefined) super.removeEventListener(type, onEvent, { capture });
      signal?.removeEventListener("abort", forget);
    });
    byCapture.set(key, registered);
    this.#listeners.set(type, byCapture);
  }

  /** Removes a listener, as `EventTarget` does, and stops keeping track of it. */
  override removeEventListener(
    type: string,
    listener: Listener | null,
    options?: boolean | EventListenerOptions,
  ): void {
    super.removeEventListener(type, listener, options);
    const capture = typeof options === "object" ? options.capture : options;
    if (listener !== null) this.#forget(type, String(Boolean(capture)), listener);
  }

  #forget(type: string, key: string, listener: Listener): void {
    const byCapture = this.#listeners.get(type);
    const registered = byCapture?.get(key);
    const cleanUp = registered?.get(listener);
    if (cleanUp === undefined) return;
    cleanUp();
    registered!.delete(listener);
    if (registered!.size === 0) byCapture!.delete(key);
    if (byCapture!.size === 0) this.#listeners.delete(type);
  }
}
