import assert from "node:assert/strict";
import type { Channel, ChannelModel, ConfirmChannel } from "../deps/amqplib.ts";
import {
  accessRefusal,
  inequivalence,
  isAccessRefused,
  isChannelClosed,
  isClassicQueue,
  isHeadersTooLarge,
  isInequivalent,
  isNacked,
  isNotAllowed,
  isNotFound,
  isPreconditionFailed,
  isResourceLocked,
  maxMessageSize,
  replyCode,
  replyText,
  withChannel,
  withConfirmChannel,
} from "./broker_errors.ts";

/** An error as amqplib 2.3.1 makes it from a channel.close: the reply code in `code` too. */
function closed(code: number, message: string): Error {
  return Object.assign(new Error(message), { code, classId: 50, methodId: 10 });
}

// The messages below are what RabbitMQ 3.10 and amqplib 2.3.1 said, copied from a session.
const Q = "probe-0a8733d3";
const NOT_FOUND = closed(
  404,
  `Operation failed: QueueDeclare; 404 (NOT-FOUND) with message "NOT_FOUND - no queue '${Q}' in vhost '/'"`,
);
const CLASSIC = closed(
  406,
  `Operation failed: QueueDeclare; 406 (PRECONDITION-FAILED) with message "PRECONDITION_FAILED - ` +
    `inequivalent arg 'x-queue-type' for queue '${Q}' in vhost '/': received the value 'quorum' ` +
    `of type 'longstr' but current is none"`,
);
const LIMIT = closed(
  406,
  `Operation failed: QueueDeclare; 406 (PRECONDITION-FAILED) with message "PRECONDITION_FAILED - ` +
    `inequivalent arg 'x-delivery-limit' for queue '${Q}' in vhost '/': received '5' but current ` +
    `is '10'"`,
);
const NOT_EMPTY = closed(
  406,
  `Operation failed: QueueDelete; 406 (PRECONDITION-FAILED) with message "PRECONDITION_FAILED - ` +
    `queue '${Q}' in vhost '/' not empty"`,
);
const TOO_LARGE = closed(
  406,
  `Channel closed by server: 406 (PRECONDITION-FAILED) with message "PRECONDITION_FAILED - ` +
    `message size 2000000 is larger than configured max size 1048576"`,
);
const LOCKED = closed(
  405,
  `Operation failed: QueueDeclare; 405 (RESOURCE-LOCKED) with message "RESOURCE_LOCKED - cannot ` +
    `obtain exclusive access to locked queue '${Q}' in vhost '/'. It could be originally declared ` +
    `on another connection or the exclusive property value does not match that of the original ` +
    `declaration."`,
);
// The handshake's refusals carry no `code`: only the message says it.
const BAD_PASSWORD = new Error(
  `Handshake terminated by server: 403 (ACCESS-REFUSED) with message "ACCESS_REFUSED - Login was ` +
    `refused using authentication mechanism PLAIN. For details see the broker logfile."`,
);
const BAD_VHOST = new Error("Expected ConnectionOpenOk; got <ConnectionClose channel:0>");
const NACKED = new Error("message nacked");
const HEADERS = new RangeError(
  "Encoded field table (headers or arguments) exceeds the 65536 byte encoding buffer",
);
const REFUSED = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5672"), {
  code: "ECONNREFUSED",
});

Deno.test("each refusal is recognised by its reply code, and by nothing else", () => {
  const all = [
    NOT_FOUND,
    CLASSIC,
    LIMIT,
    NOT_EMPTY,
    TOO_LARGE,
    LOCKED,
    BAD_PASSWORD,
    BAD_VHOST,
    NACKED,
    HEADERS,
    REFUSED,
  ];
  const cases: [(error: unknown) => boolean, Error[]][] = [
    [isNotFound, [NOT_FOUND]],
    [isPreconditionFailed, [CLASSIC, LIMIT, NOT_EMPTY, TOO_LARGE]],
    [isInequivalent, [CLASSIC, LIMIT]],
    [isClassicQueue, [CLASSIC]],
    [isResourceLocked, [LOCKED]],
    [isAccessRefused, [BAD_PASSWORD]],
    [isNotAllowed, [BAD_VHOST]],
    [isNacked, [NACKED]],
    [isHeadersTooLarge, [HEADERS]],
  ];
  for (const [is, matching] of cases) {
    for (const error of all) {
      assert.equal(is(error), matching.includes(error), `${is.name}(${error.message})`);
    }
    assert.equal(is(undefined), false, `${is.name}(undefined)`);
    assert.equal(is("a string"), false, `${is.name}("a string")`);
  }
});

Deno.test("the reply code comes from amqplib's code, else from the message; numbers elsewhere do not count", () => {
  assert.equal(replyCode(NOT_FOUND), 404);
  assert.equal(replyCode(BAD_PASSWORD), 403);
  assert.equal(replyCode(new Error(NOT_FOUND.message)), 404, "the message alone");
  assert.equal(replyCode(REFUSED), undefined, "a socket error's code is a string");
  // A queue name with a number in it, in an error of another kind.
  assert.equal(replyCode(new Error('Cannot declare queue "q-404 (NOT-FOUND)"')), undefined);
  assert.equal(isNotFound(new Error("no queue 'orders-404' in vhost '/'")), false);
});

Deno.test("an inequivalent argument is read in the broker's words", () => {
  assert.deepEqual(inequivalence(CLASSIC), {
    argument: "x-queue-type",
    wanted: "'quorum' of type 'longstr'",
    current: "none",
  });
  assert.deepEqual(inequivalence(LIMIT), {
    argument: "x-delivery-limit",
    wanted: "'5'",
    current: "'10'",
  });
  assert.equal(inequivalence(NOT_EMPTY), undefined);
  assert.equal(maxMessageSize(TOO_LARGE), 1048576);
  assert.equal(maxMessageSize(LIMIT), undefined);
});

Deno.test("the broker's words, and whose access to what it refused, are read from the reply", () => {
  assert.equal(replyText(NOT_FOUND), `no queue '${Q}' in vhost '/'`);
  assert.equal(replyText(NACKED), undefined);
  const refused = closed(
    403,
    `Operation failed: QueueDeclare; 403 (ACCESS-REFUSED) with message "ACCESS_REFUSED - access ` +
      `to queue 'amq.gen-1' in vhost 'v' refused for user 'reader'"`,
  );
  assert.deepEqual(accessRefusal(refused), {
    kind: "queue",
    name: "amq.gen-1",
    vhost: "v",
    user: "reader",
  });
  assert.equal(accessRefusal(BAD_PASSWORD), undefined, "a refused login names no resource");
  assert.equal(accessRefusal(NOT_FOUND), undefined);
});

Deno.test("the channel errors of amqplib's own count as a closed channel", () => {
  for (
    const message of [
      "channel closed",
      "Channel closed",
      "Channel closing",
      "Channel ended, no reply will be forthcoming",
      'Connection closed (Error: Connection closed: 320 (CONNECTION-FORCED) with message "x")',
    ]
  ) {
    assert.ok(isChannelClosed(new Error(message)), message);
  }
  assert.equal(isChannelClosed(NOT_FOUND), false);
});

/** A channel model whose channels record their listeners and whether they were closed. */
function fakeModel() {
  const opened: { errorListeners: number; closed: boolean; confirm: boolean }[] = [];
  const open = (confirm: boolean) => {
    const state = { errorListeners: 0, closed: false, confirm };
    opened.push(state);
    return Promise.resolve({
      on(event: string) {
        if (event === "error") state.errorListeners++;
        return this;
      },
      close() {
        if (state.closed) return Promise.reject(new Error("Channel closed"));
        state.closed = true;
        return Promise.resolve();
      },
    });
  };
  const model = {
    createChannel: () => open(false) as unknown as Promise<Channel>,
    createConfirmChannel: () => open(true) as unknown as Promise<ConfirmChannel>,
  } satisfies Pick<ChannelModel, "createChannel" | "createConfirmChannel">;
  return { model, opened };
}

Deno.test("withChannel and withConfirmChannel close their channel whether fn resolves or rejects", async () => {
  const { model, opened } = fakeModel();
  assert.equal(await withChannel(model, () => Promise.resolve(7)), 7);
  await assert.rejects(withChannel(model, () => Promise.reject(NOT_FOUND)), NOT_FOUND);
  assert.equal(await withConfirmChannel(model, () => Promise.resolve("ok")), "ok");
  await assert.rejects(
    withConfirmChannel(model, (channel) => channel.close().then(() => Promise.reject(NACKED))),
    NACKED,
    "a close that fails after fn closed it does not hide fn's error",
  );
  assert.deepEqual(opened, [
    { errorListeners: 1, closed: true, confirm: false },
    { errorListeners: 1, closed: true, confirm: false },
    { errorListeners: 1, closed: true, confirm: true },
    { errorListeners: 1, closed: true, confirm: true },
  ]);
});
