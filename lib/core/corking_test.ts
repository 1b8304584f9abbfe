import assert from "node:assert/strict";
import type { ChannelModel } from "../deps/amqplib.ts";
import { configure, type LogRecord } from "../deps/logtape.ts";
import { writeInPasses } from "./corking.ts";

/** A channel model whose connection has the multiplexer `muxer` (amqplib 2.x's shape, or not). */
function modelWith(muxer: unknown): ChannelModel {
  return { connection: { muxer } } as unknown as ChannelModel;
}

Deno.test("each pass of the multiplexer runs corked, and is uncorked even when it throws", () => {
  const calls: string[] = [];
  const muxer = {
    out: { cork: () => calls.push("cork"), uncork: () => calls.push("uncork") },
    fail: false,
    _readIncoming(this: { fail: boolean }) {
      calls.push("pass");
      if (this.fail) throw new Error("pass failed");
    },
  };
  assert.equal(writeInPasses(modelWith(muxer)), true);
  assert.equal(writeInPasses(modelWith(muxer)), true, "a second call changes nothing");
  muxer._readIncoming();
  assert.deepEqual(calls, ["cork", "pass", "uncork"], "corked once, not twice");
  muxer.fail = true;
  assert.throws(() => muxer._readIncoming(), /pass failed/);
  assert.deepEqual(calls.slice(3), ["cork", "pass", "uncork"]);
});

Deno.test("other internals are left alone, said once at debug level", async () => {
  const records: LogRecord[] = [];
  await configure({
    reset: true,
    sinks: { memory: (record: LogRecord) => records.push(record) },
    loggers: [
      { category: "tareas", lowestLevel: "debug", sinks: ["memory"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["memory"] },
    ],
  });
  try {
    const readIncoming = () => {};
    const renamed = { out: { cork() {}, uncork() {} }, readIncoming };
    for (const muxer of [undefined, {}, renamed, { out: {}, _readIncoming: readIncoming }]) {
      assert.equal(writeInPasses(modelWith(muxer)), false, JSON.stringify(muxer));
    }
    assert.equal(renamed.readIncoming, readIncoming, "nothing patched");
    assert.deepEqual(records.map((r) => [r.category.join("."), r.level]), [
      ["tareas.connection", "debug"],
    ]);
    assert.match(String(records[0]!.rawMessage), /amqplib's multiplexer internals changed/);
  } finally {
    await configure({
      reset: true,
      sinks: {},
      loggers: [{ category: ["logtape", "meta"], lowestLevel: "warning", sinks: [] }],
    });
  }
});
