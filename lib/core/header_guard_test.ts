import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import amqp, { type ConsumeMessage } from "../deps/amqplib.ts";
import {
  guardFrame,
  guardHeaderFrames,
  MAX_HEADER_DEPTH,
  UNDECODABLE_HEADER,
} from "./header_guard.ts";
import {
  bytes,
  FRAME,
  frame,
  FrameReader,
  headerPayload,
  longstr,
  message,
  method,
  nestedArrays,
  nestedTables,
  type RawProperties,
  shortstr,
  stringValue,
  table,
  u16,
  u32,
  u64,
} from "../../testing/raw_amqp.ts";

/** A content header frame on channel 1 for a 2-byte body. */
function headerFrame(properties: RawProperties): Buffer {
  return frame(FRAME.header, 1, headerPayload(2, properties));
}

/** The headers table of a header frame, read by hand (flat string values only). */
function readHeaders(rewritten: Buffer): { flags: number; fields: Record<string, string> } {
  const flags = rewritten.readUInt16BE(19);
  let at = 21;
  if (flags & 0x8000) at += 1 + rewritten[at]!;
  if (flags & 0x4000) at += 1 + rewritten[at]!;
  const end = at + 4 + rewritten.readUInt32BE(at);
  at += 4;
  const fields: Record<string, string> = {};
  while (at < end) {
    const name = rewritten.toString("utf8", at + 1, at + 1 + rewritten[at]!);
    at += 1 + rewritten[at]!;
    assert.equal(rewritten[at], 0x53, "a long string");
    const length = rewritten.readUInt32BE(at + 1);
    fields[name] = rewritten.toString("utf8", at + 5, at + 5 + length);
    at += 5 + length;
  }
  return { flags, fields };
}

/** One field of each type amqplib decodes. */
const everyType: [string, Buffer][] = ([
  ["b", [0x62, 1]],
  ["B", [0x42, 1]],
  ["t", [0x74, 1]],
  ["s", [0x73, 0, 1]],
  ["u", [0x75, 0, 1]],
  ["I", [0x49, 0, 0, 0, 1]],
  ["i", [0x69, 0, 0, 0, 1]],
  ["f", [0x66, 0, 0, 0, 1]],
  ["D", [0x44, 2, 0, 0, 0, 1]],
  ["l", [0x6c, 0, 0, 0, 0, 0, 0, 0, 1]],
  ["d", [0x64, 0, 0, 0, 0, 0, 0, 0, 1]],
  ["T", [0x54, 0, 0, 0, 0, 0, 0, 0, 1]],
  ["V", [0x56]],
  ["x", [0x78, 0, 0, 0, 3, 1, 2, 3]],
] as [string, number[]][]).map(([name, value]) => [name, Buffer.from(value)]);

Deno.test("ordinary header frames pass untouched", () => {
  const cases: RawProperties[] = [
    {},
    { deliveryMode: 2, messageId: "m-1" },
    { contentType: "application/json", headers: table(), messageId: "m-2" },
    {
      headers: table([
        ["x-tareas-attempts", bytes([0x49], u32(3))],
        ["traceparent", stringValue("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")],
        ["x-death", bytes([0x41], u32(0))],
        ["nested", bytes([0x46], table([["deep", nestedArrays(MAX_HEADER_DEPTH - 2)]]))],
        ["every", bytes([0x46], table(everyType))],
      ]),
      deliveryMode: 2,
    },
  ];
  for (const properties of cases) {
    const rest = bytes(headerFrame(properties), frame(FRAME.body, 1, Buffer.from("{}")));
    assert.equal(guardFrame(rest), undefined, JSON.stringify(Object.keys(properties)));
  }
  // 64 levels, counting the headers table, are let through; 65 are not.
  const limit = table([["a", nestedArrays(MAX_HEADER_DEPTH - 1)]]);
  assert.equal(guardFrame(headerFrame({ headers: limit })), undefined);
  const over = table([["a", nestedArrays(MAX_HEADER_DEPTH)]]);
  assert.notEqual(guardFrame(headerFrame({ headers: over })), undefined);
});

Deno.test("a header frame amqplib cannot decode is rewritten with a reason, its other properties kept", () => {
  const cases: [string, Uint8Array, RegExp][] = [
    ["arrays 20,000 deep", table([["a", nestedArrays(20_000)]]), /^nested deeper than 64 levels$/],
    ["tables 15,000 deep", table([["t", nestedTables(15_000)]]), /^nested deeper than 64 levels$/],
    ["an unknown type tag", table([["z", Buffer.from([0x5a, 0, 0])]]), /^unknown field type 0x5a$/],
    [
      "a string past its table",
      table([["s", bytes([0x53], u32(1000), Buffer.from("ab"))]]),
      /past the end of its table/,
    ],
    ["a name with no value", bytes(u32(3), shortstr("ab")), /past the end of its table/],
    [
      "an array past its table",
      table([["a", bytes([0x41], u32(99))]]),
      /past the end of its table/,
    ],
  ];
  for (const [what, headers, reason] of cases) {
    const after = frame(FRAME.body, 1, Buffer.from("{}"));
    const rest = bytes(
      headerFrame({ contentType: "text/plain", headers, messageId: "m-9" }),
      after,
    );
    const rewritten = guardFrame(rest);
    assert.ok(rewritten, `${what}: rewritten`);
    const size = rewritten.readUInt32BE(3);
    assert.equal(rewritten[7 + size], 0xce, `${what}: a frame end after the new size`);
    assert.deepEqual(rewritten.subarray(8 + size), after, `${what}: the next frame follows intact`);
    assert.equal(rewritten.readUInt16BE(1), 1, "same channel");
    assert.deepEqual(rewritten.subarray(7, 19), rest.subarray(7, 19), "class, weight, body size");
    const { flags, fields } = readHeaders(rewritten);
    assert.equal(flags, 0x8000 | 0x2000 | 0x0080, `${what}: the same properties`);
    assert.deepEqual(Object.keys(fields), [UNDECODABLE_HEADER]);
    assert.match(fields[UNDECODABLE_HEADER]!, reason, what);
    const last = rewritten.subarray(7 + size - 4, 7 + size);
    assert.deepEqual(last, shortstr("m-9"), `${what}: the message id kept, last`);
  }
});

Deno.test("a property list that runs past its frame keeps what comes before and gets the reason", () => {
  const good = headerPayload(2, { contentType: "a/b", messageId: "abc" });
  // Cut inside the message id: its length byte says 3, one byte is left.
  const cut = good.subarray(0, good.length - 2);
  const rewritten = guardFrame(frame(FRAME.header, 1, cut))!;
  assert.ok(rewritten);
  const { flags, fields } = readHeaders(rewritten);
  assert.equal(flags, 0x8000 | 0x2000, "the content type kept, the message id dropped");
  assert.equal(fields[UNDECODABLE_HEADER], "the property list runs past the end of the frame");
});

Deno.test("the scan is linear: 200,000 nested arrays stop at the depth limit, 50,000 flat fields take a few ms", () => {
  const deep = headerFrame({ headers: table([["a", nestedArrays(200_000)]]) });
  let started = performance.now();
  assert.notEqual(guardFrame(deep), undefined);
  assert.ok(performance.now() - started < 50, `${performance.now() - started} ms for the deep one`);
  const field = bytes(shortstr("k"), stringValue("v"));
  const fields = Buffer.concat(Array(50_000).fill(field));
  const wide = headerFrame({ headers: bytes(u32(fields.length), fields) });
  started = performance.now();
  assert.equal(guardFrame(wide), undefined);
  // Measured here: 8 ms the first time (not yet compiled), under 1 ms after.
  assert.ok(
    performance.now() - started < 200,
    `${performance.now() - started} ms for the wide one`,
  );
});

/**
 * A pretend broker on 127.0.0.1: the handshake, one channel, one consumer, then `deliveries`
 * written in chunks of `chunk` bytes (so that frames arrive split), until the client closes.
 */
function fakeBroker(deliveries: Buffer, chunk: number): { port: number; done: Promise<void> } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const done = (async () => {
    const conn = await listener.accept();
    listener.close();
    try {
      const reader = new FrameReader(conn);
      const header = new Uint8Array(8);
      await conn.read(header);
      const write = (data: Uint8Array) => conn.write(data);
      await write(
        method(0, 10, 10, Buffer.from([0, 9]), table(), longstr("PLAIN"), longstr("en_US")),
      );
      await reader.method(10, 11);
      await write(method(0, 10, 30, u16(2047), u32(131_072), u16(0)));
      await reader.method(10, 40);
      await write(method(0, 10, 41, shortstr("")));
      await reader.method(20, 10);
      await write(method(1, 20, 11, longstr("")));
      await reader.method(60, 20);
      await write(method(1, 60, 21, shortstr("ctag")));
      for (let at = 0; at < deliveries.length; at += chunk) {
        await write(deliveries.subarray(at, at + chunk));
      }
      await reader.method(10, 50);
      await write(method(0, 10, 51));
    } finally {
      conn.close();
    }
  })();
  return { port: (listener.addr as Deno.NetAddr).port, done };
}

function delivery(tag: number, properties: RawProperties, body = "{}"): Buffer {
  const deliver = method(1, 60, 60, shortstr("ctag"), u64(tag), [0], shortstr(""), shortstr("q"));
  return message(1, deliver, Buffer.from(body), properties);
}

Deno.test({
  name: "with the pinned amqplib, the guard applies: poisoned headers arrive as a reason and the " +
    "connection stays up",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    for (const chunk of [1 << 20, 1000, 7]) {
      const deliveries = bytes(
        delivery(1, { messageId: "before", headers: table([["k", stringValue("v")]]) }),
        delivery(2, { messageId: "arrays", headers: table([["a", nestedArrays(20_000)]]) }),
        delivery(3, { messageId: "tables", headers: table([["t", nestedTables(15_000)]]) }),
        delivery(4, { messageId: "tag", headers: table([["z", Buffer.from([0x5a])]]) }),
        delivery(5, { messageId: "after", deliveryMode: 2 }),
      );
      const broker = fakeBroker(deliveries, chunk);
      broker.done.catch(() => {}); // awaited below; a failed test must not leave it unhandled
      const model = await amqp.connect(`amqp://guest:guest@127.0.0.1:${broker.port}`);
      const lost = Promise.withResolvers<never>();
      model.on("error", () => {});
      model.on("close", (error: unknown) => {
        lost.reject(new Error(`chunk ${chunk}: the connection was lost: ${error}`));
      });
      assert.equal(guardHeaderFrames(model), true, "the guard found amqplib's recvFrame");
      const channel = await model.createChannel();
      const got: ConsumeMessage[] = [];
      const all = Promise.withResolvers<void>();
      await channel.consume("q", (m) => {
        if (m) got.push(m);
        if (got.length === 5) all.resolve();
      }, { noAck: true });
      await Promise.race([all.promise, lost.promise]);
      assert.deepEqual(got.map((m) => m.properties.messageId), [
        "before",
        "arrays",
        "tables",
        "tag",
        "after",
      ]);
      assert.deepEqual(got[0]!.properties.headers, { k: "v" });
      for (const m of got.slice(1, 4)) {
        assert.deepEqual(Object.keys(m.properties.headers ?? {}), [UNDECODABLE_HEADER]);
        assert.equal(m.content.toString(), "{}");
      }
      assert.deepEqual(got[1]!.properties.headers, {
        [UNDECODABLE_HEADER]: "nested deeper than 64 levels",
      });
      assert.equal(got[4]!.properties.deliveryMode, 2);
      lost.promise.catch(() => {}); // closed by the test from here on
      await model.close();
      await broker.done;
    }
  },
});
