/**
 * Checks what a handler hands the kit (a result, a ServiceError body) against
 * its protobuf type before it is encoded. protobufjs's `verify` checks the
 * fields it knows and ignores every other key, and `encode` drops those keys,
 * wraps numbers that do not fit, decodes a bytes string as lenient base64
 * (skipping what is not base64) and walks a map's `Object.keys`: a camelCase
 * `displayName` on a type that kept its proto name `display_name`, 2^40 in an
 * int32, "hello" in a bytes field or a JS `Map` in a map field would be sent
 * silently truncated or altered. The walk below looks only at the object's own
 * keys against a precomputed set per type, so a well-shaped result costs one
 * map lookup per key it carries.
 */
import { types } from "node:util";
import type protobuf from "protobufjs";
import { decodeBase64 } from "../codec/base64.js";

/** The first problem found, as `path: problem`, or null when the value encodes as given. */
export type ShapeCheck = (value: unknown) => string | null;

/**
 * Checks one present (non-null) value: null when fine, else the problem with
 * the path to it from this value (`.key`, `[0]`). Paths are built only on the
 * way out of a failure: a well-shaped result makes no strings.
 */
type ValueCheck = (value: unknown) => Found | null;

interface Found {
  path: string;
  readonly problem: string;
}

function found(problem: string): Found {
  return { path: "", problem };
}

function under(step: string, inner: Found): Found {
  inner.path = step + inner.path;
  return inner;
}

export function compileShapeCheck(type: protobuf.Type): ShapeCheck {
  const walk = messageCheck(type, new Map());
  return (value) => {
    const problem = isObject(value) ? walk(value) : null;
    if (problem !== null)
      return `${problem.path.replace(/^\./, "") || "value"}: ${problem.problem}`;
    const invalid = type.verify(value as Record<string, unknown>);
    return invalid === null || !isObject(value) ? invalid : locate(type, value, invalid);
  };
}

/**
 * protobufjs's verify names a problem in a repeated or map field without the
 * item or the key (`items.qty: integer expected`, `labels: string{k:string}
 * expected`). On that failure path only, the field it names is verified again
 * one element at a time to add the index or key, down through nested messages.
 */
function locate(type: protobuf.Type, message: object, problem: string): string {
  const name = /^\w+/.exec(problem)?.[0];
  const field =
    name !== undefined && Object.hasOwn(type.fields, name) ? type.fields[name] : undefined;
  if (field === undefined) return problem; // a oneof's "multiple values"
  const value = (message as Record<string, unknown>)[field.name];
  const nested = messageType(field);
  const rest = problem.slice(field.name.length);
  if (field.map || field.repeated) {
    if (!isObject(value)) return problem;
    const entries = field.map ? Object.entries(value) : Array.isArray(value) ? value.entries() : [];
    for (const [key, element] of entries) {
      const one = type.verify({ [field.name]: field.map ? { [key]: element } : [element] });
      if (one === null) continue;
      const step = field.map ? `[${JSON.stringify(key)}]` : `[${key}]`;
      const inner = one.slice(field.name.length);
      if (!inner.startsWith(".")) {
        // `: string[] expected` of the whole field becomes `: string expected` of the element.
        return `${field.name}${step}${inner.replace(/(?:\[\]|\{k:\w+\}) expected$/, " expected")}`;
      }
      return nested !== undefined && isObject(element)
        ? `${field.name}${step}.${locate(nested, element, inner.slice(1))}`
        : `${field.name}${step}: ${inner.slice(1)}`;
    }
    return problem;
  }
  return nested !== undefined && rest.startsWith(".") && isObject(value)
    ? `${field.name}.${locate(nested, value, rest.slice(1))}`
    : problem;
}

function messageType(field: protobuf.Field): protobuf.Type | undefined {
  const nested = field.resolvedType;
  return nested !== null && "fieldsArray" in nested ? nested : undefined;
}

/** Built once per type, cached before its fields so recursive types terminate. */
function messageCheck(type: protobuf.Type, cache: Map<protobuf.Type, ValueCheck>): ValueCheck {
  const known = cache.get(type);
  if (known !== undefined) return known;
  const fields = new Map<string, ValueCheck | undefined>();
  const name = type.fullName.replace(/^\./, "");
  const check: ValueCheck = (value) => {
    if (!isObject(value)) return null; // verify names the wrong type
    // protobufjs reads a message's own keys: a Date, Map or Set has none and would be sent empty.
    if (value instanceof Date || value instanceof Map || value instanceof Set) {
      return found(`${describe(value)} is not a ${name}`);
    }
    const message = value as Record<string, unknown>;
    // Own keys only: protobufjs messages carry every field's default on their prototype.
    for (const key of Object.keys(message)) {
      if (!fields.has(key)) return under(`.${key}`, found(`not a field of ${name}`));
      const inner = fields.get(key);
      const field = message[key];
      const problem = inner !== undefined && field != null ? inner(field) : null;
      if (problem !== null) return under(`.${key}`, problem);
    }
    return null;
  };
  cache.set(type, check);
  for (const field of type.fieldsArray) fields.set(field.name, fieldCheck(field.resolve(), cache));
  return check;
}

function fieldCheck(
  field: protobuf.Field,
  cache: Map<protobuf.Type, ValueCheck>,
): ValueCheck | undefined {
  const element = elementCheck(field, cache);
  // Every map, whatever its values: protobufjs would send a Map or an array as another map.
  if (field.map) return eachValue(element);
  if (element === undefined) return undefined;
  return field.repeated ? eachItem(element) : element;
}

/**
 * Message values, integers and bytes can lose data unseen by verify; other
 * scalars verify checks (and `locate` names the item or key).
 */
function elementCheck(
  field: protobuf.Field,
  cache: Map<protobuf.Type, ValueCheck>,
): ValueCheck | undefined {
  const nested = messageType(field);
  if (nested !== undefined) return messageCheck(nested, cache);
  if (field.type === "bytes") return bytesCheck;
  const range = INTEGER_RANGES[field.type];
  return range === undefined ? undefined : rangeCheck(field.type, range[0], range[1]);
}

/** [min, limit): protobufjs wraps a number outside it. */
const INTEGER_RANGES: Readonly<Record<string, readonly [number, number]>> = {
  int32: [-(2 ** 31), 2 ** 31],
  sint32: [-(2 ** 31), 2 ** 31],
  sfixed32: [-(2 ** 31), 2 ** 31],
  uint32: [0, 2 ** 32],
  fixed32: [0, 2 ** 32],
  // 64-bit numbers past 2^53 are already inexact in JS; only a wrap is caught here.
  int64: [-(2 ** 63), 2 ** 63],
  sint64: [-(2 ** 63), 2 ** 63],
  sfixed64: [-(2 ** 63), 2 ** 63],
  uint64: [0, 2 ** 64],
  fixed64: [0, 2 ** 64],
};

function rangeCheck(type: string, min: number, limit: number): ValueCheck {
  return (value) =>
    typeof value === "number" && (value < min || value >= limit)
      ? found(`${value} is out of range for ${type}`)
      : null;
}

/**
 * The forms protobufjs encodes exactly: a Uint8Array (a Buffer is one), base64
 * text (standard or URL-safe, which Node's decoder reads alike; the gateway's
 * rule, so text it would refuse in a request is refused here), and an array of
 * integers 0-255, the form protobufjs's own `toObject({ bytes: Array })`
 * gives. Anything else is altered on the way: Node skips what is not base64
 * and drops a partial last group ("hello" is sent as "hell"), a copy into a
 * Uint8Array wraps numbers (300 is sent as 44, -1 as 255), and any object
 * with a `length` is sent as that many zeros.
 */
function bytesCheck(value: unknown): Found | null {
  if (types.isUint8Array(value)) return null;
  if (typeof value === "string") {
    return decodeBase64(value) === undefined
      ? found("a string that is not base64 (a bytes field takes a Uint8Array or base64 text)")
      : null;
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const byte: unknown = value[i];
      if (typeof byte !== "number" || !Number.isInteger(byte) || byte < 0 || byte > 255) {
        const shown = typeof byte === "number" ? String(byte) : describe(byte);
        return under(`[${i}]`, found(`${shown} is not a byte (an integer 0-255)`));
      }
    }
    return null;
  }
  return found(`${describe(value)} is not bytes (a Uint8Array, base64 text or an array of 0-255)`);
}

function eachItem(check: ValueCheck): ValueCheck {
  return (value) => {
    if (!Array.isArray(value)) return null;
    for (let i = 0; i < value.length; i++) {
      const problem = value[i] == null ? null : check(value[i]);
      if (problem !== null) return under(`[${i}]`, problem);
    }
    return null;
  };
}

/**
 * A map is a plain object (protobufjs encodes its `Object.keys`); its values
 * are walked only when their type needs a check verify does not make.
 */
function eachValue(check: ValueCheck | undefined): ValueCheck {
  return (value) => {
    if (!isObject(value)) return null; // verify names the wrong type
    const prototype: unknown = Object.getPrototypeOf(value);
    if (prototype !== Object.prototype && prototype !== null) {
      return found(
        `${describe(value)} is not a plain object: give a map field a plain object ({ key: value })`,
      );
    }
    if (check === undefined) return null;
    for (const [key, entry] of Object.entries(value)) {
      const problem = entry == null ? null : check(entry);
      if (problem !== null) return under(`[${JSON.stringify(key)}]`, problem);
    }
    return null;
  };
}

function isObject(value: unknown): value is object {
  return typeof value === "object" && value !== null;
}

/** "a Map", "an Array", "a number": for messages, never the value itself. */
function describe(value: unknown): string {
  let kind: string = typeof value;
  if (value === null) kind = "null";
  else if (typeof value === "object") {
    const made: unknown = (value as { constructor?: unknown }).constructor;
    kind = typeof made === "function" && made.name !== "" ? made.name : "object";
  }
  return `${/^[aeio]/i.test(kind) ? "an" : "a"} ${kind}`;
}
