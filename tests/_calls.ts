/**
 * Helpers of the tests of issue 25 (named tasks, delays, results, progress, PermanentError): a
 * producer whose reply queues the test deletes when it ends, and the statistics of lateness.
 * @module
 */
import { createProducer } from "../lib/core/producer/mod.ts";
import type { Producer, ProducerOptions } from "../lib/core/producer/types.ts";
import { type Frame, isMethod, proxyTarget, startProxy, throughProxy } from "../testing/proxy.ts";
import type { Proxy } from "../testing/proxy.ts";
import { clientFrames } from "../testing/proxy.ts";
import type { Scenario } from "../testing/scenario.ts";

const options = { sanitizeOps: true, sanitizeResources: true };
export { options };

/** A producer of a scenario's queue, connected through a proxy that notes what it declares. */
export interface TrackedProducer extends AsyncDisposable {
  /** The producer. */
  readonly producer: Producer;
  /** The proxy between it and the broker (to cut its connection). */
  readonly proxy: Proxy;
  /** The reply queues it declared (`<queue>.reply.<uuid>`), read from its `queue.declare`s. */
  readonly replyQueues: Set<string>;
}

/** Options of {@linkcode trackedProducer}. */
export interface TrackedProducerOptions extends Omit<ProducerOptions, "url" | "queue"> {
  /** Sees each frame the producer sends, with the number of its connection through the proxy. */
  onFrame?: (frame: Frame, connection: number) => void;
}

/**
 * Creates a producer of `scenario`'s queue. A reply queue outlives its producer for 30 minutes
 * (x-expires) and the library never tells its name, so the producer connects through a proxy
 * that reads the queue names it declares: disposing closes the producer, then deletes them.
 */
export async function trackedProducer(
  scenario: Scenario,
  options: TrackedProducerOptions = {},
): Promise<TrackedProducer> {
  const { onFrame, ...producerOptions } = options;
  const replyQueues = new Set<string>();
  const prefix = `${scenario.queue}.reply.`;
  const decoder = new TextDecoder();
  const proxy = startProxy(proxyTarget(scenario.url), {
    tap: clientFrames((frame, connection) => {
      onFrame?.(frame, connection);
      if (!isMethod(frame, 50, 10)) return; // queue.declare
      // class, method, reserved short, then the queue name as a short string
      const length = frame.payload[6] ?? 0;
      const name = decoder.decode(frame.payload.subarray(7, 7 + length));
      if (name.startsWith(prefix)) replyQueues.add(name);
    }),
  });
  let producer: Producer;
  try {
    producer = await createProducer({
      ...producerOptions,
      url: throughProxy(scenario.url, proxy.port),
      queue: scenario.queue,
    });
  } catch (error) {
    await proxy.close();
    throw error;
  }
  return {
    producer,
    proxy,
    replyQueues,
    async [Symbol.asyncDispose]() {
      await producer.close();
      for (const name of replyQueues) await scenario.channel.deleteQueue(name).catch(() => {});
      await proxy.close();
    },
  };
}

/** The `p`-th percentile (0..100) of `values`, nearest rank. */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1]!;
}

/** What the `returns_result` handler module returns. */
export interface RunResult {
  taskId: string;
  attempt: number;
  pid: number;
}

/** The stderr line the `returns_result` handler writes when a run of task `taskId` starts. */
export function startedLine(taskId: string, attempt?: number): RegExp {
  return new RegExp(
    `^returns_result: task ${taskId} attempt ${attempt ?? "\\d+"} pid (\\d+) started at (\\d+)$`,
  );
}

/** The handler module that returns `{ taskId, attempt, pid }`, as `--handler` takes it. */
export const RETURNS_RESULT = "tests/handlers/returns_result.ts";
