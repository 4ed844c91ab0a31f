/**
 * The public face of one message type's JSON codec: JSON value -> plain object
 * for `Type.encode`, and decoded message -> JSON text per JsonOptions.
 */
import type protobuf from "protobufjs";
import type { JsonOptions } from "../config/types.js";
import { parseJsonBody } from "./json-body.js";
import { optionBits, type ValueKind, type Writer } from "./kinds.js";
import { messageKindOf } from "./message-codec.js";
import { BadReply, BadValue, badFieldError, badReplyError, isTooDeep } from "./problems.js";

export interface MessageCodec {
  readonly type: protobuf.Type;
  /**
   * A parsed JSON value (see parseJsonBody) -> a plain object `type.encode`
   * accepts. `path` is the JSON path of `value` in the request, e.g. "$"; a bad
   * value is a TURNOUT_ERR_BAD_FIELD naming `path` + the offending field.
   */
  fromJson(value: unknown, path: string): object;
  /** A decoded message -> JSON text; an unprintable reply is TURNOUT_ERR_BAD_REPLY. */
  toJson(message: object, options: JsonOptions): string;
  /**
   * The value of `toJson`'s text as parseJsonBody reads it (int64 past 2^53 as
   * LosslessNumber), so it compares equal to a legacy body parsed the same way.
   */
  toJsonValue(message: object, options: JsonOptions): unknown;
}

const codecs = new WeakMap<protobuf.Type, MessageCodec>();

/** The codec of `type`, compiled on first use and shared afterwards. */
export function compileMessageCodec(type: protobuf.Type): MessageCodec {
  let codec = codecs.get(type);
  if (codec === undefined) {
    codec = new JsonCodec(type, messageKindOf(type));
    codecs.set(type, codec);
  }
  return codec;
}

/** Reads `value` with `read`, turning a BadValue into the 400 at `path`. */
export function readWith(read: (value: unknown) => unknown, value: unknown, path: string): unknown {
  try {
    return read(value);
  } catch (error) {
    if (error instanceof BadValue) throw badFieldError(error, path);
    throw error;
  }
}

/** Prints `message` with `writer`, turning a BadReply into the 502. */
export function printWith(
  writer: (message: object) => string,
  message: object,
  typeName: string,
): string {
  try {
    return writer(message);
  } catch (error) {
    if (error instanceof BadReply) throw badReplyError(typeName, error.detail);
    // Any inside Any decodes afresh at each level: protobufjs's limit does not hold.
    if (isTooDeep(error)) throw badReplyError(typeName, "messages nest too deeply", error);
    throw error;
  }
}

class JsonCodec implements MessageCodec {
  readonly #kind: ValueKind;
  readonly #name: string;
  readonly #writers: Array<Writer | undefined> = [];
  readonly #read: (value: unknown) => unknown;

  constructor(
    readonly type: protobuf.Type,
    kind: ValueKind,
  ) {
    this.#kind = kind;
    this.#read = (value) => kind.read(value);
    this.#name = type.fullName.replace(/^\./, "");
  }

  fromJson(value: unknown, path: string): object {
    return readWith(this.#read, value, path) as object;
  }

  toJson(message: object, options: JsonOptions): string {
    const bits = optionBits(options);
    let writer = this.#writers[bits];
    if (writer === undefined) {
      writer = this.#kind.writer(bits);
      this.#writers[bits] = writer;
    }
    return printWith(writer, message, this.#name);
  }

  toJsonValue(message: object, options: JsonOptions): unknown {
    return parseJsonBody(this.toJson(message, options));
  }
}
