/**
 * AMQP 0-9-1 written by hand, for tests that need what no client library will send: a content
 * header whose headers table nests 20,000 deep, an unknown field type, a length that runs past its
 * table. {@linkcode publishRaw} is a minimal client (handshake, confirm mode, one publish); the
 * encoders also let a test play the broker's side of a connection.
 * @module
 */
import { Buffer } from "node:buffer";

/** Frame types. */
export const FRAME = { method: 1, header: 2, body: 3, heartbeat: 8 } as const;
const FRAME_END = 0xce;

/** One frame read off a connection. */
export interface Frame {
  /** {@linkcode FRAME} type. */
  type: number;
  /** Channel number. */
  channel: number;
  /** The payload, between the size and the frame end. */
  payload: Buffer;
}

/** The bytes of `parts`, concatenated. */
export function bytes(...parts: (Uint8Array | number[])[]): Buffer {
  return Buffer.concat(parts.map((part) => Buffer.from(part)));
}

/** An unsigned 16-bit integer, big endian. */
export function u16(value: number): Buffer {
  const buffer = Buffer.alloc(2);
  buffer.writeUInt16BE(value);
  return buffer;
}

/** An unsigned 32-bit integer, big endian. */
export function u32(value: number): Buffer {
  const buffer = Buffer.alloc(4);
  buffer.writeUInt32BE(value);
  return buffer;
}

/** An unsigned 64-bit integer, big endian. */
export function u64(value: number): Buffer {
  const buffer = Buffer.alloc(8);
  buffer.writeBigUInt64BE(BigInt(value));
  return buffer;
}

/** A short string: one length byte, then UTF-8. */
export function shortstr(text: string): Buffer {
  const utf8 = Buffer.from(text);
  return bytes([utf8.length], utf8);
}

/** A long string: a 32-bit length, then the bytes. */
export function longstr(value: string | Uint8Array): Buffer {
  const raw = typeof value === "string" ? Buffer.from(value) : Buffer.from(value);
  return bytes(u32(raw.length), raw);
}

/** A field value of type `S` (long string). */
export function stringValue(text: string): Buffer {
  return bytes([0x53], longstr(text));
}

/**
 * A field table: a 32-bit length, then each name as a short string and its value as given (type
 * tag included, as {@linkcode stringValue} or {@linkcode nestedArrays} make it).
 */
export function table(entries: [string, Uint8Array][] = []): Buffer {
  const body = bytes(...entries.flatMap(([name, value]) => [shortstr(name), value]));
  return bytes(u32(body.length), body);
}

/** A field value of `depth` arrays each holding the next (`[[[…]]]`), built without recursion. */
export function nestedArrays(depth: number): Buffer {
  const out = Buffer.alloc(depth * 5);
  for (let level = 0; level < depth; level++) {
    out[level * 5] = 0x41; // 'A'
    out.writeUInt32BE((depth - level - 1) * 5, level * 5 + 1);
  }
  return out;
}

/** A field value of `depth` tables each holding the next under the name "t". */
export function nestedTables(depth: number): Buffer {
  const out = Buffer.alloc(depth * 7 - 2);
  for (let level = 0; level < depth; level++) {
    const at = level * 7;
    out[at] = 0x46; // 'F'
    const inner = (depth - level - 1) * 7;
    out.writeUInt32BE(inner, at + 1);
    if (level < depth - 1) {
      out[at + 5] = 1; // name length
      out[at + 6] = 0x74; // "t"
    }
  }
  return out;
}

/** A frame around `payload`. */
export function frame(type: number, channel: number, payload: Uint8Array): Buffer {
  return bytes([type], u16(channel), u32(payload.length), payload, [FRAME_END]);
}

/** A method frame. */
export function method(
  channel: number,
  classId: number,
  methodId: number,
  ...args: (Uint8Array | number[])[]
): Buffer {
  return frame(FRAME.method, channel, bytes(u16(classId), u16(methodId), ...args));
}

/** Properties of a content header; `headers` is an encoded table, as {@linkcode table} makes it. */
export interface RawProperties {
  /** `contentType`. */
  contentType?: string;
  /** The headers table, encoded (length included): may be anything, even malformed. */
  headers?: Uint8Array;
  /** 2 for persistent. */
  deliveryMode?: number;
  /** `messageId`. */
  messageId?: string;
}

/** The payload of a basic content header (class 60) for a body of `size` bytes. */
export function headerPayload(size: number, properties: RawProperties): Buffer {
  let flags = 0;
  const parts: Uint8Array[] = [];
  if (properties.contentType !== undefined) {
    flags |= 0x8000;
    parts.push(shortstr(properties.contentType));
  }
  if (properties.headers !== undefined) {
    flags |= 0x2000;
    parts.push(properties.headers);
  }
  if (properties.deliveryMode !== undefined) {
    flags |= 0x1000;
    parts.push(Buffer.from([properties.deliveryMode]));
  }
  if (properties.messageId !== undefined) {
    flags |= 0x0080;
    parts.push(shortstr(properties.messageId));
  }
  return bytes(u16(60), u16(0), u64(size), u16(flags), ...parts);
}

/** The three frames of a message: `method` (publish or deliver), its content header and body. */
export function message(
  channel: number,
  methodFrame: Uint8Array,
  body: Uint8Array,
  properties: RawProperties,
): Buffer {
  return bytes(
    methodFrame,
    frame(FRAME.header, channel, headerPayload(body.length, properties)),
    ...(body.length === 0 ? [] : [frame(FRAME.body, channel, body)]),
  );
}

/** Reads whole frames off a connection. */
export class FrameReader {
  #conn: Deno.Conn;
  #buffer = Buffer.alloc(0);

  /** Reads from `conn`. */
  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  /** The next frame; throws when the connection ends first. */
  async next(): Promise<Frame> {
    for (;;) {
      const b = this.#buffer;
      if (b.length >= 7) {
        const size = b.readUInt32BE(3);
        if (b.length >= size + 8) {
          if (b[size + 7] !== FRAME_END) throw new Error("Invalid frame end");
          this.#buffer = b.subarray(size + 8);
          return { type: b[0]!, channel: b.readUInt16BE(1), payload: b.subarray(7, size + 7) };
        }
      }
      const chunk = new Uint8Array(65536);
      const n = await this.#conn.read(chunk);
      if (n === null) throw new Error("The connection closed");
      this.#buffer = Buffer.concat([this.#buffer, chunk.subarray(0, n)]);
    }
  }

  /** Reads frames until a method frame of `classId.methodId`; throws on connection.close. */
  async method(classId: number, methodId: number): Promise<Frame> {
    for (;;) {
      const next = await this.next();
      if (next.type !== FRAME.method) continue;
      const [c, m] = [next.payload.readUInt16BE(0), next.payload.readUInt16BE(2)];
      if (c === classId && m === methodId) return next;
      if ((c === 10 || c === 20) && m === 40) {
        const text = next.payload.subarray(7, 7 + next.payload[6]!).toString();
        throw new Error(`The broker closed the ${c === 10 ? "connection" : "channel"}: ${text}`);
      }
    }
  }
}

/** Options of {@linkcode publishRaw}. */
export interface RawPublishOptions {
  /** Broker URL (amqp://user:pass@host:port/vhost). */
  url: string;
  /** The queue to publish to, through the default exchange. */
  queue: string;
  /** The body. */
  body: Uint8Array;
  /** The message's properties; `headers` may be any bytes. */
  properties: RawProperties;
}

/**
 * Publishes one message over a connection of its own, written frame by frame, and resolves once
 * the broker confirms it.
 *
 * @throws {Error} when the broker nacks it or closes the channel or connection.
 */
export async function publishRaw(options: RawPublishOptions): Promise<void> {
  const url = new URL(options.url);
  const conn = await Deno.connect({ hostname: url.hostname, port: Number(url.port || 5672) });
  try {
    const reader = new FrameReader(conn);
    const write = (data: Uint8Array) => conn.write(data).then(() => {});
    const user = decodeURIComponent(url.username || "guest");
    const password = decodeURIComponent(url.password || "guest");
    const vhost = url.pathname.length > 1 ? decodeURIComponent(url.pathname.slice(1)) : "/";
    await write(bytes(Buffer.from("AMQP"), [0, 0, 9, 1]));
    await reader.method(10, 10);
    await write(method(
      0,
      10,
      11,
      table(),
      shortstr("PLAIN"),
      longstr(`\0${user}\0${password}`),
      shortstr("en_US"),
    ));
    const tune = await reader.method(10, 30);
    const frameMax = tune.payload.readUInt32BE(6) || 131_072;
    await write(method(0, 10, 31, u16(1), u32(frameMax), u16(0)));
    await write(method(0, 10, 40, shortstr(vhost), shortstr(""), Buffer.from([0])));
    await reader.method(10, 41);
    await write(method(1, 20, 10, shortstr("")));
    await reader.method(20, 11);
    await write(method(1, 85, 10, Buffer.from([0])));
    await reader.method(85, 11);
    const publish = method(1, 60, 40, u16(0), shortstr(""), shortstr(options.queue), [0]);
    const body = Buffer.from(options.body);
    const frames = [
      publish,
      frame(FRAME.header, 1, headerPayload(body.length, options.properties)),
    ];
    for (let at = 0; at < body.length; at += frameMax - 8) {
      frames.push(frame(FRAME.body, 1, body.subarray(at, at + frameMax - 8)));
    }
    await write(bytes(...frames));
    for (;;) {
      const next = await reader.next();
      if (next.type !== FRAME.method) continue;
      const [c, m] = [next.payload.readUInt16BE(0), next.payload.readUInt16BE(2)];
      if (c === 60 && m === 80) break; // basic.ack
      if (c === 60 && m === 120) {
        throw new Error(`The broker refused the publish to ${options.queue}`);
      }
      if ((c === 10 || c === 20) && m === 40) {
        const text = next.payload.subarray(7, 7 + next.payload[6]!).toString();
        throw new Error(`The broker closed the ${c === 10 ? "connection" : "channel"}: ${text}`);
      }
    }
    await write(method(0, 10, 50, u16(200), shortstr("bye"), u16(0), u16(0)));
    await reader.method(10, 51);
  } finally {
    conn.close();
  }
}
