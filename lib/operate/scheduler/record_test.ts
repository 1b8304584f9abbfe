import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { leaseQueue, needsToken, tickTaskId } from "./lease.ts";
import {
  decodeRecord,
  encodeRecord,
  MAX_RECORD_BYTES,
  mergeRecords,
  RecordFormatError,
} from "./record.ts";

const options = { sanitizeOps: true, sanitizeResources: true };

Deno.test({
  name: "a record survives its encoding, and names who wrote it and when",
  ...options,
  fn() {
    const record = new Map([["a", Date.parse("2026-01-01T00:00:01Z")], ["b", 0]]);
    const body = encodeRecord(record, "host-1", Date.parse("2026-01-01T00:00:01.002Z"));
    assert.deepEqual(decodeRecord(body), record);
    assert.deepEqual(JSON.parse(body.toString()), {
      v: 1,
      ticks: { a: "2026-01-01T00:00:01.000Z", b: "1970-01-01T00:00:00.000Z" },
      by: "host-1",
      at: "2026-01-01T00:00:01.002Z",
    });
    assert.equal(leaseQueue("reports"), "reports.scheduler");
    assert.equal(tickTaskId("s", Date.parse("2026-01-01T00:00:01Z")), "s@2026-01-01T00:00:01.000Z");
  },
});

Deno.test({
  name: "records merge to the latest time of each schedule",
  ...options,
  fn() {
    const merged = mergeRecords([new Map([["a", 5], ["b", 9]]), new Map([["a", 7], ["c", 1]])]);
    assert.deepEqual(merged, new Map([["a", 7], ["b", 9], ["c", 1]]));
    assert.deepEqual(mergeRecords([]), new Map());
  },
});

Deno.test({
  name: "a message that is not a record is refused before anything reads it",
  ...options,
  fn() {
    const bodies: [Uint8Array, RegExp][] = [
      [Buffer.from("not json"), /the body is not JSON/],
      [new Uint8Array([0xff, 0xfe]), /the body is not JSON/],
      [Buffer.from("null"), /expected \{"v": 1/],
      [Buffer.from('{"v": 2, "ticks": {}}'), /expected \{"v": 1/],
      [Buffer.from('{"v": 1, "ticks": []}'), /expected \{"v": 1/],
      [Buffer.from('{"v": 1, "ticks": {"a": "yesterday"}}'), /an id and an ISO time/],
      [Buffer.from('{"v": 1, "ticks": {"a": 5}}'), /an id and an ISO time/],
      [Buffer.from('{"v": 1, "ticks": {"": "2026-01-01T00:00:00Z"}}'), /an id and an ISO time/],
      [new Uint8Array(MAX_RECORD_BYTES + 1), /bytes, limit/],
    ];
    for (const [body, expected] of bodies) {
      assert.throws(() => decodeRecord(body), (error: unknown) => {
        assert.ok(error instanceof RecordFormatError);
        assert.match(error.message, expected);
        return true;
      });
    }
  },
});

Deno.test({
  name: "a first token is made only when the lease queue has neither a message nor a consumer",
  ...options,
  fn() {
    assert.equal(needsToken({ messageCount: 0, consumerCount: 0 }), true);
    // A consumer may hold the token unacked: it is not counted as a message.
    assert.equal(needsToken({ messageCount: 0, consumerCount: 1 }), false);
    assert.equal(needsToken({ messageCount: 1, consumerCount: 0 }), false);
  },
});
