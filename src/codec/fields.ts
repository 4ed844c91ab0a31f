/**
 * One compiled field: its names, the kind of its values, and the reader of its
 * whole JSON value (a list for repeated fields, an object for maps). Built
 * once per message type by message-codec.ts.
 */
import { LosslessNumber } from "lossless-json";
import protobuf from "protobufjs";
import { intKindOf, quote, readString, type ValueKind } from "./kinds.js";
import { longToDecimal, readInteger } from "./numbers.js";
import { BadValue, keySegment, rethrowUnder, show } from "./problems.js";

/** How a map key goes from a JSON object key to protobufjs and back. */
export interface MapKey {
  readonly label: string;
  /** JSON object key -> the key protobufjs encodes (normalized decimal, "true"/"false"). */
  read(key: string): string;
  /** A decoded message's key -> JSON text, quoted. */
  write(key: string): string;
}

export interface FieldCodec {
  readonly field: protobuf.Field;
  /** The protobufjs property name. */
  readonly name: string;
  readonly protoName: string;
  readonly jsonName: string;
  /** The kind of one value (of each element, of each map value). */
  readonly kind: ValueKind;
  readonly repeated: boolean;
  readonly map: MapKey | undefined;
  /** Singular with tracked presence: a message, a oneof member, a proto3 `optional`, a proto2 field. */
  readonly presence: boolean;
  /** The real (not proto3-optional) oneof this field belongs to. */
  readonly oneof: string | undefined;
  /** A non-null JSON value for the whole field -> what protobufjs encodes. */
  readonly read: (value: unknown) => unknown;
}

/**
 * A message field's value in a plain object, own properties only: a field may
 * be named toString or constructor, which a plain `{}` already "has".
 */
export function ownField(message: Record<string, unknown>, name: string): unknown {
  return Object.hasOwn(message, name) ? message[name] : undefined;
}

export function isJsonObject(value: unknown): value is Record<string, unknown> {
  return (
    typeof value === "object" &&
    value !== null &&
    !Array.isArray(value) &&
    !(value instanceof LosslessNumber)
  );
}

/** Sets a key on a fresh object, also when the key is `__proto__`. */
export function setKey(object: Record<string, unknown>, key: string, value: unknown): void {
  if (key === "__proto__") {
    Object.defineProperty(object, key, {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  } else {
    object[key] = value;
  }
}

export function compileField(field: protobuf.Field, kind: ValueKind): FieldCodec {
  const map = field instanceof protobuf.MapField ? mapKey(field.keyType) : undefined;
  const partOf = field.partOf;
  const synthetic = partOf !== null && field.options?.["proto3_optional"] === true;
  const repeated = field.repeated && !field.map;
  return {
    field,
    name: field.name,
    protoName: field.protoName,
    jsonName: field.jsonName,
    kind,
    repeated,
    map,
    // hasPresence: a oneof member, a proto3 `optional`, a proto2 optional or required.
    presence: !repeated && map === undefined && (kind.isMessage || field.hasPresence),
    oneof: partOf === null || synthetic ? undefined : partOf.name,
    read: map !== undefined ? mapReader(map, kind) : repeated ? listReader(kind) : kind.read,
  };
}

function listReader(kind: ValueKind): (value: unknown) => unknown[] {
  return (value) => {
    if (!Array.isArray(value)) {
      throw new BadValue(`expected an array of ${kind.label}, got ${show(value)}`);
    }
    const out = new Array(value.length);
    let i = 0;
    try {
      for (; i < value.length; i++) {
        const item: unknown = value[i];
        if (item !== null) out[i] = kind.read(item);
        else if (kind.nullValue !== undefined) out[i] = kind.nullValue;
        else throw new BadValue(`null is not allowed in a list of ${kind.label}`);
      }
    } catch (error) {
      rethrowUnder(error, `[${i}]`);
    }
    return out;
  };
}

function mapReader(key: MapKey, kind: ValueKind): (value: unknown) => Record<string, unknown> {
  const normalized = key.label !== "string";
  return (value) => {
    if (!isJsonObject(value)) {
      throw new BadValue(
        `expected an object (map<${key.label}, ${kind.label}>), got ${show(value)}`,
      );
    }
    const out: Record<string, unknown> = {};
    let name = "";
    try {
      for (name in value) {
        const k = key.read(name);
        if (normalized && Object.hasOwn(out, k)) throw new BadValue(`map key ${k} is given twice`);
        const item = value[name];
        if (item !== null) setKey(out, k, kind.read(item));
        else if (kind.nullValue !== undefined) setKey(out, k, kind.nullValue);
        else throw new BadValue(`null is not allowed as a map value of ${kind.label}`);
      }
    } catch (error) {
      rethrowUnder(error, keySegment(name));
    }
    return out;
  };
}

const STRING_KEY: MapKey = { label: "string", read: readString, write: quote };

const BOOL_KEY: MapKey = {
  label: "bool",
  read: (k) => {
    if (k === "true" || k === "false") return k;
    throw new BadValue(`invalid bool map key ${show(k)} (expected "true" or "false")`);
  },
  write: (k) => `"${k}"`,
};

const DECIMAL_KEY = /^(0|-?[1-9]\d*)$/;

function mapKey(type: string): MapKey {
  if (type === "string") return STRING_KEY;
  if (type === "bool") return BOOL_KEY;
  const kind = intKindOf(type);
  if (kind === undefined) throw new Error(`unsupported map key type ${type}`);
  const unsigned = kind === "uint32" || kind === "uint64";
  const wide = kind === "int64" || kind === "uint64";
  return {
    label: kind,
    read: (k) => {
      const key = String(readInteger(kind, k));
      // Written as the key it is: an exponent, a fraction, a sign or leading
      // zeros ("1e2", "1.0", "-0", "01") would silently become another text.
      if (!DECIMAL_KEY.test(k)) {
        throw new BadValue(`a ${kind} map key is a plain decimal integer, got ${show(k)}`);
      }
      return key;
    },
    // protobufjs keys decoded 64-bit maps by an 8-character hash of the bits,
    // always: longFromKey would read a hash whose 8 bytes are digits
    // ("12345678") as decimal text, another key.
    write: wide
      ? (k) => {
          const bits =
            k.length === 8
              ? protobuf.util.longFromHash(k, unsigned)
              : protobuf.util.longFromKey(k, unsigned);
          return `"${longToDecimal(bits, unsigned)}"`;
        }
      : (k) => `"${k}"`,
  };
}
