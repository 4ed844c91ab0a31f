/**
 * Printing a decoded message as JSON text, compiled per message type and
 * option variant: each field gets its quoted key (proto or camel name) and an
 * `emit` closure that returns the value's text, or undefined to leave the
 * field out. The message loop only concatenates.
 */
import protobuf from "protobufjs";
import type { FieldCodec } from "./fields.js";
import { CAMEL, EMIT_DEFAULTS, type Writer } from "./kinds.js";
import { BadReply } from "./problems.js";

/** The value's JSON text, or undefined when the field is left out. */
// biome-ignore lint/suspicious/noExplicitAny: values are whatever protobufjs decoded.
type Emit = (value: any, message: object) => string | undefined;

export interface FieldPrinter {
  readonly name: string;
  /** `{"key":` for the first printed field, `,"key":` for the others. */
  readonly first: string;
  readonly next: string;
  readonly emit: Emit;
}

export function compileFieldPrinter(codec: FieldCodec, bits: number, writer: Writer): FieldPrinter {
  const key = JSON.stringify(bits & CAMEL ? codec.jsonName : codec.protoName);
  return {
    name: codec.name,
    first: `{${key}:`,
    next: `,${key}:`,
    emit: emitter(codec, bits, writer),
  };
}

function emitter(codec: FieldCodec, bits: number, write: Writer): Emit {
  const emitDefaults = (bits & EMIT_DEFAULTS) !== 0;
  if (codec.map !== undefined) {
    const writeKey = codec.map.write;
    const empty = emitDefaults ? "{}" : undefined;
    return (value: Record<string, unknown> | null | undefined) => {
      if (value == null) return empty;
      let out = "";
      for (const key in value)
        out += `${out === "" ? "{" : ","}${writeKey(key)}:${write(value[key])}`;
      return out === "" ? empty : `${out}}`;
    };
  }
  if (codec.repeated) {
    const empty = emitDefaults ? "[]" : undefined;
    return (value: unknown[] | null | undefined) => {
      if (value == null || value.length === 0) return empty;
      let out = `[${write(value[0])}`;
      for (let i = 1; i < value.length; i++) out += `,${write(value[i])}`;
      return `${out}]`;
    };
  }
  if (codec.presence) {
    if (codec.kind.isMessage) return (value) => (value == null ? undefined : write(value));
    // An unset scalar with presence (a oneof member, a proto3 `optional`) may
    // read a default from the prototype (protobufjs gives an optional enum 0,
    // an optional int64 a Long 0), so only an own property means "set".
    const name = codec.name;
    return (value, message) => (Object.hasOwn(message, name) ? write(value) : undefined);
  }
  const kind = codec.kind;
  if (emitDefaults) {
    const text = kind.defaultText(bits);
    return (value) => (value == null || kind.isDefault(value) ? text : write(value));
  }
  return (value) => (value == null || kind.isDefault(value) ? undefined : write(value));
}

/** Wire types each field number may arrive with, as a bit set (1 << wire type). */
export function allowedWireTypes(type: protobuf.Type): Map<number, number> {
  const allowed = new Map<number, number>();
  for (const field of type.fieldsArray) {
    const scalar = field.resolvedType instanceof protobuf.Enum ? "int32" : field.type;
    const basic = (protobuf.types.basic as Record<string, number | undefined>)[scalar];
    let bits: number;
    if (field.map || basic === undefined)
      bits = (1 << 2) | (1 << 3); // length-delimited or group
    else bits = field.repeated ? (1 << basic) | (1 << 2) : 1 << basic; // packed or not
    allowed.set(field.id, bits);
  }
  return allowed;
}

/**
 * protobufjs keeps a known field that arrived with the wrong wire type as an
 * unknown field instead of failing; that is a reply of another type, so refuse it.
 */
export function checkUnknowns(
  type: protobuf.Type,
  allowed: Map<number, number>,
  unknowns: readonly Uint8Array[],
): void {
  for (const raw of unknowns) {
    let tag = 0;
    for (let i = 0, shift = 0; i < raw.length && i < 5; i++, shift += 7) {
      const byte = raw[i]!;
      tag += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) break;
    }
    const id = Math.floor(tag / 8);
    const wire = tag % 8;
    const ok = allowed.get(id);
    if (ok !== undefined && (ok & (1 << wire)) === 0) {
      const name = type.fieldsById[id]?.name ?? String(id);
      throw new BadReply(
        `field ${name} (number ${id}) has wire type ${wire}, which does not fit it`,
      );
    }
  }
}

const wireTypesByType = new WeakMap<protobuf.Type, Map<number, number>>();

/**
 * `bytes` decoded as `type`, refused (an Error) when a known field, here or in
 * a message inside, arrived with the wrong wire type: protobufjs's `decode`
 * sets such a field aside (kept only when unknowns are) instead of failing, so
 * a message of another type would pass with the field missing.
 */
export function decodeStrictly(type: protobuf.Type, bytes: Uint8Array): protobuf.Message {
  const reader = protobuf.Reader.create(bytes);
  reader.discardUnknown = false;
  const message = type.decode(reader);
  try {
    checkAndDropUnknowns(type, message);
  } catch (error) {
    // Outside the printer, BadReply (internal) becomes an Error like decode's own.
    throw error instanceof BadReply ? new Error(error.detail) : error;
  }
  return message;
}

/**
 * The unknown fields are kept only to be checked here, then dropped, as a
 * plain decode drops them: a handler that echoes part of its request must not
 * send back fields it never saw.
 */
function checkAndDropUnknowns(type: protobuf.Type, message: object): void {
  let allowed = wireTypesByType.get(type);
  if (allowed === undefined) {
    allowed = allowedWireTypes(type);
    wireTypesByType.set(type, allowed);
  }
  const held = message as { $unknowns?: Uint8Array[] };
  if (held.$unknowns !== undefined) {
    checkUnknowns(type, allowed, held.$unknowns);
    delete held.$unknowns;
  }
  for (const field of type.fieldsArray) {
    const inner = field.resolvedType;
    if (!(inner instanceof protobuf.Type) || !Object.hasOwn(message, field.name)) continue;
    const value = (message as Record<string, unknown>)[field.name];
    const nested = field.map
      ? Object.values(value as object)
      : field.repeated
        ? (value as unknown[])
        : [value];
    for (const item of nested)
      if (item !== null && typeof item === "object") checkAndDropUnknowns(inner, item);
  }
}
