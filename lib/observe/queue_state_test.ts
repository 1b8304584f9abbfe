import assert from "node:assert/strict";
import type { Channel, ChannelModel } from "../deps/amqplib.ts";
import { ConfigError, TareasError } from "../core/errors.ts";
import { readQueueState } from "./queue_state.ts";

/** An error as amqplib reports the broker closing a channel with `code`. */
function closed(code: number, text: string): Error {
  const name = { 403: "ACCESS-REFUSED", 404: "NOT-FOUND" }[code as 403 | 404];
  return Object.assign(
    new Error(`Operation failed: QueueDeclare; ${code} (${name}) with message "${text}"`),
    { code },
  );
}

/** A connection whose channels answer passive declares from `queues` (an Error: refused). */
function model(queues: Record<string, { messageCount: number; consumerCount: number } | Error>) {
  let open = 0;
  const fake = {
    get open() {
      return open;
    },
    createChannel: () => {
      open++;
      const channel = {
        on: () => channel,
        close: () => {
          open--;
          return Promise.resolve();
        },
        checkQueue: (name: string) => {
          const answer = queues[name] ?? closed(404, `NOT_FOUND - no queue '${name}'`);
          return answer instanceof Error
            ? Promise.reject(answer)
            : Promise.resolve({ queue: name, ...answer });
        },
      };
      return Promise.resolve(channel as unknown as Channel);
    },
  };
  return fake as typeof fake & Pick<ChannelModel, "createChannel">;
}

Deno.test("a queue and its dead-letter queue give the counts", async () => {
  const broker = model({
    q: { messageCount: 3, consumerCount: 2 },
    "q.dead": { messageCount: 1, consumerCount: 0 },
  });
  assert.deepEqual(await readQueueState(broker, "q"), {
    declared: true,
    counts: { ready: 3, consumers: 2, dead: 1 },
    listening: false,
  });
  assert.equal(broker.open, 0, "its channel is closed");
});

Deno.test("a queue nothing declared is not declared, and says so", async () => {
  const broker = model({});
  const state = await readQueueState(broker, "q");
  assert.equal(state.declared, false);
  assert.equal(state.counts, undefined);
  assert.ok(state.error instanceof ConfigError);
  assert.equal(state.error.message, 'Queue "q" does not exist: nothing has declared it yet');
  assert.equal(broker.open, 0);
});

Deno.test("a queue with no dead-letter queue: not made by tareas, and the fix named", async () => {
  const state = await readQueueState(model({ q: { messageCount: 3, consumerCount: 0 } }), "q");
  assert.equal(state.declared, true);
  assert.ok(state.error instanceof ConfigError);
  assert.match(state.error.message, /^Queue "q" was not set up by tareas: .*classic queue/);
  assert.match(state.error.message, /\(3 messages ready\)/);
  assert.match(state.error.message, /deno task migrate --queue q/);
});

Deno.test("a refused permission is named in one line", async () => {
  const refused = closed(
    403,
    "ACCESS_REFUSED - access to queue 'q' in vhost '/' refused for user 'watcher'",
  );
  const state = await readQueueState(model({ q: refused }), "q");
  assert.equal(state.declared, undefined, "the broker did not say");
  assert.ok(state.error instanceof ConfigError);
  assert.equal(
    state.error.message,
    'User "watcher" may not use queue "q" in virtual host "/" (ACCESS_REFUSED): it needs ' +
      'permissions on queue "q"',
  );
});

Deno.test("a lost connection is a TareasError, not a configuration error", async () => {
  const state = await readQueueState(
    model({ q: new Error("Channel ended, no reply will be forthcoming") }),
    "q",
  );
  assert.equal(state.declared, undefined);
  assert.ok(state.error instanceof TareasError && !(state.error instanceof ConfigError));
  assert.equal(state.error.message, "Channel ended, no reply will be forthcoming");
});
