/**
 * The round trip of one request and its result: ours (`producer.call` to one `worker.ts` whose
 * handler returns a small value), a bare amqplib request/reply on the same broker and queue type
 * (the floor: what our library adds is the difference), and BullMQ (`queue.add` and
 * `job.waitUntilFinished`) on the local Redis. Each system's caller is its own process
 * (`bench/_call_client.ts`), making calls one at a time and then several at once.
 * @module
 */
import { connect, declareFloorQueue, deleteAll } from "./_amqp.ts";
import { obliterate, spawnWorker as spawnBullmqWorker } from "./bullmq.ts";
import { Fixture, type OursOptions } from "./ours.ts";
import { type Child, spawnDeno, stopAll } from "./_proc.ts";
import { quantile } from "./_stats.ts";
import { amqpUrl, benchFile, randomQueueName, redisUrl } from "./_util.ts";

/** The systems compared. */
export const CALL_SYSTEMS = ["ours", "floor", "bullmq"] as const;
/** One of {@linkcode CALL_SYSTEMS}. */
export type CallSystem = typeof CALL_SYSTEMS[number];

/** Calls in flight at once: one (sequential), then several. */
export const CALL_IN_FLIGHT = [1, 10] as const;

/** Prefetch and concurrency of each responder (BullMQ: concurrency). */
export const CALL_PREFETCH = 10;

const READY_TIMEOUT_MS = 30_000;

/** Round trips of one system with K calls in flight. */
export interface CallFigures {
  /** Calls measured. */
  calls: number;
  /** Median round trip, ms. */
  p50Ms: number;
  /** 99th percentile, ms. */
  p99Ms: number;
  /** The slowest, ms. */
  maxMs: number;
  /** Calls completed per second over the measured calls. */
  callsPerSecond: number;
}

/** One system's run: figures per number of calls in flight. */
export interface CallRun {
  /** Which system. */
  system: CallSystem;
  /** Figures by calls in flight (`1`, `10`). */
  byInFlight: Record<number, CallFigures>;
  /** The 1-minute load average when the run started. */
  loadAverage: number;
}

/** Options of {@linkcode runCall}. */
export interface CallOptions extends OursOptions {
  /** Calls measured per number in flight. */
  calls: number;
  /** Calls made first, one at a time, and not measured. @default 20 */
  warmup?: number;
  /** Give up after this long. @default {60 s + 50 ms per call} */
  timeoutMs?: number;
}

/**
 * Runs `system`'s responder and caller on a fresh queue: the responder first (ready: our
 * `worker.online`, a `bench ready` line for the others), then the caller, which makes its
 * warm-up calls and then `calls` calls for each number in {@linkcode CALL_IN_FLIGHT}.
 */
export async function runCall(system: CallSystem, options: CallOptions): Promise<CallRun> {
  const loadAverage = Deno.loadavg()[0]!;
  const run = { ours: runOurs, floor: runFloor, bullmq: runBullmq }[system];
  return { system, byInFlight: await run(options), loadAverage };
}

async function runOurs(options: CallOptions): Promise<Record<number, CallFigures>> {
  await using fixture = await Fixture.open("call", ["worker.online"], options);
  const { child, name } = fixture.spawnWorker([
    ...["--prefetch", String(CALL_PREFETCH), "--concurrency", String(CALL_PREFETCH)],
    ...["--handler", benchFile("_result_handler.ts")],
  ]);
  await fixture.waitOnline(child, name);
  const client = spawnClient("ours", fixture.queue, { AMQP_URL: fixture.url }, options);
  fixture.children.push(client.child);
  try {
    return await client.figures;
  } finally {
    await stopAll([client.child]);
    await deleteQueues(options.url ?? amqpUrl(), client.replyQueue());
  }
}

async function runFloor(options: CallOptions): Promise<Record<number, CallFigures>> {
  const url = options.url ?? amqpUrl();
  const queue = randomQueueName("call-floor");
  const connection = await connect(url);
  const children: Child[] = [];
  let client: Client | undefined;
  try {
    const channel = await connection.createChannel();
    await declareFloorQueue(channel, queue);
    await channel.close();
    const responder = spawnDeno(benchFile("_bare_responder.ts"), [
      ...["--queue", queue, "--prefetch", String(CALL_PREFETCH)],
    ], { name: "bare-responder", env: { AMQP_URL: url } });
    children.push(responder);
    await responder.waitForReport("ready", READY_TIMEOUT_MS);
    client = spawnClient("floor", queue, { AMQP_URL: url }, options);
    children.push(client.child);
    return await client.figures;
  } finally {
    await stopAll(children);
    const reply = client?.replyQueue();
    await deleteAll(connection, { queues: [queue, ...reply === undefined ? [] : [reply]] });
    await connection.close();
  }
}

async function runBullmq(options: CallOptions): Promise<Record<number, CallFigures>> {
  const name = randomQueueName("call-bullmq");
  const children: Child[] = [];
  try {
    const worker = spawnBullmqWorker(name, CALL_PREFETCH, "result", "bullmq-call-worker");
    children.push(worker);
    await worker.waitForReport("ready", READY_TIMEOUT_MS);
    const client = spawnClient("bullmq", name, { REDIS_URL: redisUrl() }, options);
    children.push(client.child);
    return await client.figures;
  } finally {
    await stopAll(children);
    await obliterate(name);
  }
}

/** A caller process and what it reports. */
interface Client {
  child: Child;
  /** Resolves with its figures once it has exited 0. */
  figures: Promise<Record<number, CallFigures>>;
  /** Its reply queue, once it has said which. */
  replyQueue(): string | undefined;
}

function spawnClient(
  system: CallSystem,
  queue: string,
  env: Record<string, string>,
  options: CallOptions,
): Client {
  const timeoutMs = options.timeoutMs ?? 60_000 + 50 * options.calls;
  const child = spawnDeno(benchFile("_call_client.ts"), [
    ...["--system", system, "--queue", queue, "--calls", String(options.calls)],
    ...["--in-flight", CALL_IN_FLIGHT.join(","), "--warmup", String(options.warmup ?? 20)],
  ], { name: `call-client-${system}`, env });
  let reply: string | undefined;
  child.onLine((line) => {
    if (line.stream === "stdout" && line.text.startsWith("bench reply ")) {
      reply = line.text.slice("bench reply ".length);
    }
  });
  const figures = (async () => {
    const out: Record<number, CallFigures> = {};
    for (const k of CALL_IN_FLIGHT) {
      const line = await child.waitForLine(
        (l) => l.stream === "stdout" && l.text.startsWith(`bench rtt ${k} `),
        { timeoutMs, what: `the round trips of ${k} in flight` },
      );
      const [, , , elapsed, values] = line.text.split(" ");
      out[k] = callFigures(values!.split(",").map(Number), Number(elapsed));
    }
    const status = await child.status;
    if (!status.success) {
      throw new Error(`${child.name} exited with code ${status.code}\n${child.output()}`);
    }
    return out;
  })();
  return { child, figures, replyQueue: () => reply };
}

/** p50, p99 and max of `rtts` (ms), and the calls per second over `elapsedMs`. */
export function callFigures(rtts: readonly number[], elapsedMs: number): CallFigures {
  return {
    calls: rtts.length,
    p50Ms: quantile(rtts, 0.5),
    p99Ms: quantile(rtts, 0.99),
    maxMs: Math.max(...rtts),
    callsPerSecond: rtts.length / elapsedMs * 1000,
  };
}

async function deleteQueues(url: string, queue: string | undefined): Promise<void> {
  if (queue === undefined) return;
  const connection = await connect(url);
  try {
    await deleteAll(connection, { queues: [queue] });
  } finally {
    await connection.close();
  }
}
