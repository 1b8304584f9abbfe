import assert from "node:assert/strict";
import { microtasksDone } from "../../../testing/fake_channel.ts";
import { TaskTimeoutError } from "../errors.ts";
import { Deadlines, type Run, runHandler, Slots } from "./runner.ts";

const options = { sanitizeOps: true, sanitizeResources: true };

/**
 * Slots whose deliveries are names: a name starting with "async" is handled until the test ends
 * it (`finish(name)`), any other is handled synchronously.
 */
function slots(concurrency: number) {
  const started: string[] = [];
  const errors: unknown[] = [];
  const running = new Map<string, PromiseWithResolvers<void>>();
  const slots = new Slots<string>({
    concurrency,
    handle: (name) => {
      started.push(name);
      if (!name.startsWith("async")) return undefined;
      const handling = Promise.withResolvers<void>();
      running.set(name, handling);
      return handling.promise;
    },
    onError: (error) => errors.push(error),
  });
  const finish = async (name: string, error?: Error) => {
    const handling = running.get(name);
    assert.ok(handling, `${name} is being handled`);
    if (error) handling.reject(error);
    else handling.resolve();
    await microtasksDone();
  };
  return { slots, started, errors, finish };
}

Deno.test(
  "Slots: no more deliveries are handled at once than the concurrency",
  options,
  async () => {
    const { slots: s, started, finish } = slots(2);
    for (const name of ["async1", "async2", "async3", "async4", "async5"]) s.receive(name);
    assert.deepEqual(started, ["async1", "async2"]);
    assert.equal(s.active, 2);
    assert.equal(s.inHand, 5);
    await finish("async2");
    assert.deepEqual(started, ["async1", "async2", "async3"], "the freed slot takes the next");
    assert.equal(s.active, 2);
    assert.equal(s.inHand, 4);
    for (const name of ["async1", "async3", "async4", "async5"]) await finish(name);
    assert.equal(s.active, 0);
    assert.equal(s.inHand, 0);
  },
);

Deno.test("Slots: waiting deliveries are handled in arrival order", options, async () => {
  const { slots: s, started, finish } = slots(1);
  for (const name of ["async1", "b", "async2", "c", "d"]) s.receive(name);
  assert.deepEqual(started, ["async1"]);
  await finish("async1");
  assert.deepEqual(started, ["async1", "b", "async2"]);
  await finish("async2");
  assert.deepEqual(started, ["async1", "b", "async2", "c", "d"]);
  assert.equal(s.inHand, 0);
});

Deno.test("Slots: a synchronous handling ends within receive(), with no promise", options, () => {
  const { slots: s, started } = slots(1);
  s.receive("a");
  s.receive("b");
  assert.deepEqual(started, ["a", "b"]);
  assert.equal(s.inHand, 0);
});

Deno.test(
  "Slots: 10,000 waiting synchronous deliveries run in one loop, not one call deep each",
  options,
  async () => {
    const first = Promise.withResolvers<void>();
    const depths: number[] = [];
    let handled = 0;
    const s = new Slots<number>({
      concurrency: 1,
      handle: (n) => {
        if (n === 0) return first.promise; // The others wait for it.
        handled++;
        if (n === 1 || n === 10_000) depths.push(new Error().stack!.split("\n").length);
        return undefined;
      },
      onError: (error) => {
        throw error;
      },
    });
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = Infinity;
    try {
      for (let n = 0; n <= 10_000; n++) s.receive(n);
      assert.equal(s.inHand, 10_001);
      first.resolve();
      await microtasksDone();
    } finally {
      Error.stackTraceLimit = limit;
    }
    assert.equal(handled, 10_000, "all handled as soon as the first ended");
    assert.equal(s.inHand, 0);
    assert.equal(depths[1], depths[0], "the 10,000th runs at the stack depth of the 1st");
  },
);

Deno.test("Slots: idle() resolves when the last handling ends", options, async () => {
  const { slots: s, finish } = slots(2);
  let idle = false;
  await s.idle(); // Nothing in hand: at once.
  s.receive("async1");
  s.receive("async2");
  s.idle().then(() => idle = true);
  await finish("async1");
  assert.equal(idle, false, "one handling still runs");
  await finish("async2");
  assert.equal(idle, true);
});

Deno.test("Slots: dropWaiting forgets the deliveries that wait for a slot", options, async () => {
  const { slots: s, started, finish } = slots(1);
  for (const name of ["async1", "b", "c"]) s.receive(name);
  s.dropWaiting();
  assert.equal(s.inHand, 1, "the running one is still in hand");
  const idle = s.idle();
  await finish("async1");
  await idle;
  assert.deepEqual(started, ["async1"]);
  assert.equal(s.inHand, 0);
});

Deno.test(
  "Slots: a handling that throws or rejects is reported and frees its slot",
  options,
  async () => {
    const errors: unknown[] = [];
    const started: string[] = [];
    const thrown = new Error("thrown");
    const rejected = new Error("rejected");
    const s = new Slots<string>({
      concurrency: 1,
      handle: (name) => {
        started.push(name);
        if (name === "throws") throw thrown;
        if (name === "rejects") return Promise.reject(rejected);
        return undefined;
      },
      onError: (error) => errors.push(error),
    });
    for (const name of ["throws", "a", "rejects", "b"]) s.receive(name);
    await microtasksDone();
    assert.deepEqual(started, ["throws", "a", "rejects", "b"]);
    assert.deepEqual(errors, [thrown, rejected]);
    assert.equal(s.inHand, 0);
  },
);

Deno.test(
  "Deadlines: a run's deadline is its start plus the timeout, none without one",
  options,
  () => {
    assert.equal(new Deadlines(1_000, () => "late").deadline(500), 1_500);
    assert.equal(new Deadlines(0, () => "late").deadline(500), Infinity);
  },
);

Deno.test("Deadlines: sweep(now) aborts the runs past their deadline, once", options, () => {
  let reasons = 0;
  const deadlines = new Deadlines(1_000, () => {
    reasons++;
    return new TaskTimeoutError(1_000);
  });
  const early: Run = { controller: new AbortController(), deadline: deadlines.deadline(0) };
  const late: Run = { controller: new AbortController(), deadline: deadlines.deadline(500) };
  const ended: Run = { controller: new AbortController(), deadline: deadlines.deadline(0) };
  for (const run of [early, late, ended]) deadlines.add(run);
  deadlines.delete(ended);
  deadlines.sweep(999);
  assert.equal(early.controller.signal.aborted, false, "1 ms before its deadline");
  deadlines.sweep(1_000);
  assert.ok(early.controller.signal.reason instanceof TaskTimeoutError);
  assert.equal(late.controller.signal.aborted, false);
  assert.equal(ended.controller.signal.aborted, false, "a run deleted is not watched");
  deadlines.sweep(2_000);
  assert.ok(late.controller.signal.aborted);
  assert.equal(reasons, 2, "each run aborted once");
});

Deno.test("Deadlines: start() sweeps by itself until stop()", options, async () => {
  const deadlines = new Deadlines(20, () => new TaskTimeoutError(20));
  const run: Run = {
    controller: new AbortController(),
    deadline: deadlines.deadline(performance.now()),
  };
  deadlines.add(run);
  const aborted = new Promise((resolve) => run.controller.signal.onabort = resolve);
  deadlines.start();
  deadlines.start(); // Once is enough: a second sweeper would leak (the sanitizer would see it).
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      aborted,
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error("No sweep within 2 s of a 20 ms deadline")),
          2_000,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
    deadlines.stop();
  }
  assert.ok(run.controller.signal.reason instanceof TaskTimeoutError);
});

/** Deadlines of 1 s whose reason is a TaskTimeoutError, and a session's set of runs. */
function runner() {
  return {
    deadlines: new Deadlines(1_000, () => new TaskTimeoutError(1_000)),
    runs: new Set<Run>(),
  };
}

Deno.test(
  "runHandler: a synchronous handler's result comes back as it is, and it is not watched",
  options,
  () => {
    const { deadlines, runs } = runner();
    let signal: AbortSignal | undefined;
    assert.equal(runHandler((s) => void (signal = s), 0, deadlines, runs), undefined);
    assert.equal(runHandler(() => 42, 0, deadlines, runs), 42, "its result, not a promise");
    assert.equal(runs.size, 0);
    deadlines.sweep(Infinity);
    assert.equal(signal?.aborted, false, "nothing to abort: it ended");
    const thrown = new Error("at once");
    assert.throws(() =>
      runHandler(
        () => {
          throw thrown;
        },
        0,
        deadlines,
        runs,
      ), thrown);
    assert.equal(runs.size, 0);
  },
);

Deno.test("runHandler: an asynchronous handler is watched until it ends", options, async () => {
  const { deadlines, runs } = runner();
  const handling = Promise.withResolvers<void>();
  let signal: AbortSignal | undefined;
  const running = runHandler(
    (s) => {
      signal = s;
      return handling.promise;
    },
    0,
    deadlines,
    runs,
  );
  assert.ok(running instanceof Promise);
  assert.equal(runs.size, 1);
  handling.resolve();
  await running;
  assert.equal(runs.size, 0, "the session's runs are cleaned up");
  deadlines.sweep(Infinity);
  assert.equal(signal?.aborted, false, "the deadlines forgot it");
});

Deno.test("runHandler: a handler's own failure rejects its promise", options, async () => {
  const { deadlines, runs } = runner();
  const failure = new Error("boom");
  const running = runHandler(() => Promise.reject(failure), 0, deadlines, runs);
  await assert.rejects(running as Promise<unknown>, (error: unknown) => error === failure);
  assert.equal(runs.size, 0);
});

Deno.test(
  "runHandler: a handler past its deadline that ignores its signal is abandoned",
  options,
  async () => {
    const { deadlines, runs } = runner();
    const handling = Promise.withResolvers<void>();
    let signal: AbortSignal | undefined;
    const running = runHandler(
      (s) => {
        signal = s;
        return handling.promise; // Ignores the signal.
      },
      0,
      deadlines,
      runs,
    )!;
    deadlines.sweep(999);
    assert.equal(signal?.aborted, false);
    deadlines.sweep(1_000);
    assert.ok(signal?.reason instanceof TaskTimeoutError);
    await assert.rejects(running as Promise<unknown>, (error: unknown) => error === signal?.reason);
    assert.equal(runs.size, 0);
    // Its promise, left behind, may still settle: nothing hears of it (no unhandled rejection).
    handling.reject(new Error("too late"));
    await microtasksDone();
  },
);

Deno.test(
  "runHandler: a handler that stops on its signal rejects with the signal's reason",
  options,
  async () => {
    const { deadlines, runs } = runner();
    const running = runHandler(
      (signal) =>
        new Promise((_, reject) =>
          signal.addEventListener("abort", () => reject(new Error("aborted")))
        ),
      0,
      deadlines,
      runs,
    )!;
    deadlines.sweep(1_000);
    await assert.rejects(running as Promise<unknown>, TaskTimeoutError);
  },
);

Deno.test("runHandler: aborting the session's runs abandons its handlers", options, async () => {
  const { deadlines, runs } = runner();
  const lost = new Error("the connection that delivered it was lost");
  const running = runHandler(() => new Promise(() => {}), 0, deadlines, runs)!;
  // What a session does when one of its channels closes.
  for (const run of runs) run.controller.abort(lost);
  await assert.rejects(running as Promise<unknown>, (error: unknown) => error === lost);
  assert.equal(runs.size, 0);
  deadlines.sweep(Infinity); // The deadlines forgot it too: no second abort.
});
