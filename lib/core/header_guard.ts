/**
 * A guard in front of amqplib's frame decoder, so that a message whose headers amqplib cannot
 * decode costs that message, not the connection.
 *
 * amqplib 2.3.1 decodes a content header's `headers` table recursively (`decodeFields` →
 * `decodeFieldValue` → `decodeArray` in lib/codec.js): a table or array nested some 15,000 deep
 * overflows the stack while the frame is read, and an unknown type tag or a length past the end
 * throws. Either error is a frame error: the connection is dropped, the broker requeues every
 * delivery in hand on it, and the poison comes back to do it again. The broker accepts such a
 * message from any client (it does not decode the table on publish).
 *
 * amqplib's modules capture `decodeFields` when they load and its package exports hide lib/*, so
 * the codec cannot be patched. The connection instance can: its `recvFrame()` parses one frame
 * off `this.rest`, reading the socket while a whole frame is not there. The guard wraps it: it
 * makes sure a whole frame is in `rest` (reading as amqplib does), and when that frame is a
 * content header whose property list or headers table amqplib would choke on (headers nested
 * deeper than {@linkcode MAX_HEADER_DEPTH}, an unknown type tag, a length past the end of its
 * table or of the frame), it rewrites the frame's bytes in place into the same header with
 * `{"x-tareas-undecodable": "<why>"}` as its headers table; then amqplib's own `recvFrame` decodes
 * it. The check is iterative and linear in the frame's size; a frame that is not a content header
 * costs two comparisons, one without headers a few more (see the unit test's measurement).
 *
 * The scan is a little stricter than amqplib: a string or byte array whose length runs past its
 * table also counts as undecodable (amqplib would cut it short and read garbage after it).
 * @module
 */
import { Buffer } from "node:buffer";
import type { ChannelModel } from "../deps/amqplib.ts";
import { log } from "./log.ts";

/** The header the guard puts in place of a headers table it dropped; its value says why. */
export const UNDECODABLE_HEADER = "x-tareas-undecodable";

/**
 * Deepest nesting of a headers table the guard lets through, counting the headers table itself
 * as 1 (the broker's `x-death` is 4 deep). amqplib uses two stack frames per level.
 */
export const MAX_HEADER_DEPTH = 64;

/** What the guard needs of amqplib 2.x's connection object (lib/connection.js). */
interface FrameReading {
  rest: Buffer;
  stream: { read(): Buffer | null };
  maxFrameSize: number;
  recvSinceLastCheck: boolean;
  recvFrame(): unknown;
}

const FRAME_HEADER = 2;
const FRAME_END = 0xce;
/** Type (1), channel (2), size (4). */
const FRAME_PREFIX = 7;
/** Class id (2), weight (2), body size (8), then the property flags (2) of a content header. */
const FLAGS_AT = FRAME_PREFIX + 12;
const HEADERS_FLAG = 0x2000;

let warned = false;

/**
 * Installs the guard on the connection of `model`; returns whether it could (false when
 * amqplib's internals are not the ones it knows: logged once, at debug level, and nothing
 * changes).
 *
 * @example
 * ```ts
 * const model = await amqp.connect(url);
 * guardHeaderFrames(model); // a header nested 20,000 deep now arrives as x-tareas-undecodable
 * ```
 */
export function guardHeaderFrames(model: ChannelModel): boolean {
  const connection = (model as { connection?: unknown }).connection as Partial<FrameReading>;
  const original = connection?.recvFrame;
  if (
    typeof original !== "function" || !Buffer.isBuffer(connection.rest) ||
    typeof connection.stream?.read !== "function" || typeof connection.maxFrameSize !== "number"
  ) {
    if (!warned) {
      warned = true;
      log("connection").debug(
        "amqplib's connection internals changed: headers it cannot decode will drop the " +
          "connection",
      );
    }
    return false;
  }
  const reading = connection as FrameReading;
  if ((original as { guarded?: boolean }).guarded) return true;
  const guarded = function (this: FrameReading): unknown {
    if (!wholeFrame(this)) return false;
    if (this.rest[0] === FRAME_HEADER) {
      const rewritten = guardFrame(this.rest);
      if (rewritten !== undefined) this.rest = rewritten;
    }
    return original.call(this);
  };
  Object.defineProperty(guarded, "guarded", { value: true });
  reading.recvFrame = guarded;
  return true;
}

/**
 * Reads the socket, as amqplib's `recvFrame` does, until `rest` holds a whole frame; false when
 * the socket has no more for now. A frame over the size limit counts as whole: amqplib rejects it.
 */
function wholeFrame(connection: FrameReading): boolean {
  let rest = connection.rest;
  for (;;) {
    if (rest.length >= FRAME_PREFIX) {
      const size = readU32(rest, 3);
      if (rest.length >= size + FRAME_PREFIX + 1) return true;
      if (connection.maxFrameSize > 0 && size > connection.maxFrameSize) return true;
    }
    const incoming = connection.stream.read();
    if (incoming === null) return false;
    connection.recvSinceLastCheck = true;
    rest = connection.rest = rest.length === 0 ? incoming : Buffer.concat([rest, incoming]);
  }
}

/**
 * Checks the content header frame at the start of `rest` (which holds at least the whole frame);
 * returns `rest` with that frame rewritten when amqplib could not decode its properties, or
 * `undefined` when it can (the usual case: nothing is copied).
 *
 * @example
 * ```ts
 * const fixed = guardFrame(buffer); // undefined, or the same frame with a small headers table
 * ```
 */
export function guardFrame(rest: Buffer): Buffer | undefined {
  const size = readU32(rest, 3);
  const end = FRAME_PREFIX + size;
  if (rest[0] !== FRAME_HEADER || end + 1 > rest.length || rest[end] !== FRAME_END) return;
  if (FLAGS_AT + 2 > end) return; // not a basic content header: amqplib reports it
  const flags = (rest[FLAGS_AT]! << 8) | rest[FLAGS_AT + 1]!;
  if (flags === 0) return;
  const problem = scanProperties(rest, FLAGS_AT + 2, end, flags);
  return problem === undefined ? undefined : rewrite(rest, end, flags, problem);
}

/** Why a property list cannot be decoded, and from where on it cannot be kept. */
interface Problem {
  reason: string;
  /**
   * The flag (one bit) of the first property that runs past the end of the frame: it and the
   * later ones are dropped. 0 when every property is within the frame (the headers table is bad).
   */
  from: number;
}

/**
 * Walks the properties of a content header in flag order (what amqplib's decodeBasicProperties
 * reads); returns what is wrong with them, or undefined.
 */
function scanProperties(b: Buffer, at: number, end: number, flags: number): Problem | undefined {
  let pos = at;
  let tableReason: string | undefined;
  for (let bit = 0x8000; bit >= 0x0004; bit >>= 1) {
    if ((flags & bit) === 0) continue;
    if (bit === HEADERS_FLAG) {
      if (pos + 4 > end) return { reason: PAST_FRAME, from: bit };
      const length = readU32(b, pos);
      pos += 4;
      if (pos + length > end) return { reason: PAST_FRAME, from: bit };
      tableReason = scanTable(b, pos, pos + length);
      pos += length;
    } else if (bit === 0x1000 || bit === 0x0800) {
      pos += 1; // delivery mode, priority: an octet
    } else if (bit === 0x0040) {
      pos += 8; // timestamp
    } else {
      if (pos >= end) return { reason: tableReason ?? PAST_FRAME, from: bit };
      pos += 1 + b[pos]!; // a short string
    }
    if (pos > end) return { reason: tableReason ?? PAST_FRAME, from: bit };
  }
  return tableReason === undefined ? undefined : { reason: tableReason, from: 0 };
}

const PAST_FRAME = "the property list runs past the end of the frame";
const PAST_TABLE = "a length runs past the end of its table or array";
const TOO_DEEP = `nested deeper than ${MAX_HEADER_DEPTH} levels`;
const TABLE = 1;
const ARRAY = 0;
/** The scan's explicit stack: where each open table or array ends, and which it is. */
const ends = new Float64Array(MAX_HEADER_DEPTH);
const kinds = new Uint8Array(MAX_HEADER_DEPTH);

/**
 * Scans a field table (its fields, from `start` to `end`) without recursion; returns why amqplib
 * could not decode it, or undefined. Every step moves forward or closes a level: linear time.
 */
function scanTable(b: Buffer, start: number, end: number): string | undefined {
  let depth = 0;
  ends[0] = end;
  kinds[0] = TABLE;
  let pos = start;
  for (;;) {
    const limit = ends[depth]!;
    if (pos === limit) {
      if (depth === 0) return undefined;
      depth--;
      continue;
    }
    if (kinds[depth] === TABLE) {
      pos += 1 + b[pos]!; // the field name
      if (pos >= limit) return PAST_TABLE; // no room left for its value
    }
    const tag = b[pos++]!;
    let size: number;
    switch (tag) {
      case 0x74: // t boolean
      case 0x62: // b int8
      case 0x42: // B uint8
        size = 1;
        break;
      case 0x73: // s int16
      case 0x75: // u uint16
        size = 2;
        break;
      case 0x49: // I int32
      case 0x69: // i uint32
      case 0x66: // f float
        size = 4;
        break;
      case 0x44: // D decimal
        size = 5;
        break;
      case 0x6c: // l int64
      case 0x64: // d double
      case 0x54: // T timestamp
        size = 8;
        break;
      case 0x56: // V void
        size = 0;
        break;
      case 0x53: // S long string
      case 0x78: // x byte array
      case 0x46: // F table
      case 0x41: { // A array
        if (pos + 4 > limit) return PAST_TABLE;
        size = readU32(b, pos);
        pos += 4;
        if (pos + size > limit) return PAST_TABLE;
        if (tag === 0x46 || tag === 0x41) {
          if (depth + 2 > MAX_HEADER_DEPTH) return TOO_DEEP;
          depth++;
          ends[depth] = pos + size;
          kinds[depth] = tag === 0x46 ? TABLE : ARRAY;
          continue;
        }
        break;
      }
      default:
        return `unknown field type 0x${tag.toString(16).padStart(2, "0")}`;
    }
    pos += size;
    if (pos > limit) return PAST_TABLE;
  }
}

/**
 * The frame at the start of `rest` with its headers table replaced by the undecodable header, and
 * the properties from `problem.from` on dropped (they cannot be found past a broken length).
 */
function rewrite(rest: Buffer, end: number, flags: number, problem: Problem): Buffer {
  const kept: Uint8Array[] = [];
  let keptFlags = 0;
  let pos = FLAGS_AT + 2;
  const replacement = undecodableTable(problem.reason);
  for (let bit = 0x8000; bit >= 0x0004; bit >>= 1) {
    if ((flags & bit) === 0) continue;
    if (bit === problem.from) break;
    const start = pos;
    if (bit === HEADERS_FLAG) {
      pos += 4 + readU32(rest, pos);
      kept.push(replacement);
      keptFlags |= bit;
      continue;
    }
    pos += bit === 0x1000 || bit === 0x0800 ? 1 : bit === 0x0040 ? 8 : 1 + rest[pos]!;
    kept.push(rest.subarray(start, pos));
    keptFlags |= bit;
  }
  if ((keptFlags & HEADERS_FLAG) === 0) {
    // The headers come after the properties kept so far, in flag order: insert them in place.
    keptFlags |= HEADERS_FLAG;
    const before = (flags & 0x8000 ? 1 : 0) + (flags & 0x4000 ? 1 : 0);
    kept.splice(Math.min(before, kept.length), 0, replacement);
  }
  const payload = Buffer.concat([
    rest.subarray(FRAME_PREFIX, FLAGS_AT),
    Buffer.from([keptFlags >> 8, keptFlags & 0xff]),
    ...kept,
  ]);
  const head = Buffer.alloc(FRAME_PREFIX);
  head[0] = FRAME_HEADER;
  head.writeUInt16BE(rest.readUInt16BE(1), 1);
  head.writeUInt32BE(payload.length, 3);
  return Buffer.concat([head, payload, Buffer.from([FRAME_END]), rest.subarray(end + 1)]);
}

/** `{"x-tareas-undecodable": reason}`, encoded with its length. */
function undecodableTable(reason: string): Buffer {
  const name = Buffer.from(UNDECODABLE_HEADER);
  const value = Buffer.from(reason);
  const table = Buffer.alloc(4 + 1 + name.length + 1 + 4 + value.length);
  let at = table.writeUInt32BE(table.length - 4, 0);
  at = table.writeUInt8(name.length, at);
  at += name.copy(table, at);
  at = table.writeUInt8(0x53, at);
  at = table.writeUInt32BE(value.length, at);
  value.copy(table, at);
  return table;
}

function readU32(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}

/**
 * Why the guard dropped a delivery's headers, when it did: the undecodable header's value, as a
 * short string (anyone can publish that header too; it is only ever a reason to dead-letter).
 *
 * @example
 * ```ts
 * const why = undecodableReason(message.properties.headers); // "nested deeper than 64 levels"
 * ```
 */
export function undecodableReason(
  headers: Record<string, unknown> | undefined,
): string | undefined {
  const value = headers?.[UNDECODABLE_HEADER];
  if (value === undefined) return undefined;
  return typeof value === "string" && value.length > 0 && value.length <= 100
    ? value
    : "the headers could not be decoded";
}
