/**
 * Several observers of a worker as one, for `createWorker({ metrics })`, which takes one.
 * @module
 */
import type { WorkerObserver } from "../core/worker/types.ts";

/**
 * One observer made of several (those `undefined` are left out): attaching it attaches each, its
 * detach detaches each.
 *
 * @example
 * ```ts
 * const metrics = combineObservers(serveMetrics({ port: 9464 }), otelMetrics());
 * await using worker = await createWorker({ handler, metrics });
 * ```
 */
export function combineObservers(...observers: (WorkerObserver | undefined)[]): WorkerObserver {
  const present = observers.filter((observer) => observer !== undefined);
  return {
    attach(worker) {
      const detaches = present.map((observer) => observer.attach(worker));
      return () => {
        for (const detach of detaches) {
          try {
            detach();
          } catch {
            // One observer's failure does not keep the others attached.
          }
        }
      };
    },
  };
}
