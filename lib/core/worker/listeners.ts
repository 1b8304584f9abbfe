/**
 * An `EventTarget` that knows which event types have listeners, so that its owner builds and
 * dispatches only the events someone listens to: dispatching an event costs about a microsecond,
 * as much as the rest of a no-op task's bookkeeping.
 * @module
 */

/** An `EventTarget` that counts its listeners by type; see the module doc. */
export class ListenedEventTarget extends EventTarget {
  #listened = new Map<string, number>();

  /** Whether a listener is registered for `type`. */
  listens(type: string): boolean {
    return this.#listened.has(type);
  }

  /** Registers a listener, as `EventTarget` does, and counts it. */
  override addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void {
    super.addEventListener(type, listener, options);
    this.#listened.set(type, (this.#listened.get(type) ?? 0) + 1);
  }

  /** Removes a listener, as `EventTarget` does, and stops counting it. */
  override removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions,
  ): void {
    super.removeEventListener(type, listener, options);
    const count = (this.#listened.get(type) ?? 0) - 1;
    if (count > 0) this.#listened.set(type, count);
    else this.#listened.delete(type);
  }
}
