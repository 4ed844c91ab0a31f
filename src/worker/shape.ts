/**
 * Checks what a handler hands the kit (a result, a ServiceError body) against
 * its protobuf type before it is encoded. protobufjs's `verify` checks the
 * fields it knows and ignores every other key, and `encode` drops those keys
 * and wraps numbers that do not fit: a camelCase `displayName` on a type that
 * kept its proto name `display_name`, or 2^40 in an int32, would be sent
 * silently truncated. The walk below looks only at the object's own keys
 * against a precomputed set per type, so a well-shaped result costs one map
 * lookup per key it carries.
 */
import type protobuf from "protobufjs";

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
    return type.verify(value as Record<string, unknown>);
  };
}

/** Built once per type, cached before its fields so recursive types terminate. */
function messageCheck(type: protobuf.Type, cache: Map<protobuf.Type, ValueCheck>): ValueCheck {
  const known = cache.get(type);
  if (known !== undefined) return known;
  const fields = new Map<string, ValueCheck | undefined>();
  const name = type.fullName.replace(/^\./, "");
  const check: ValueCheck = (value) => {
    if (!isObject(value)) return null; // verify names the wrong type
    if (value instanceof Date) return found(`a Date is not a ${name}`);
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
  if (element === undefined) return undefined;
  if (field.map) return eachValue(element);
  return field.repeated ? eachItem(element) : element;
}

/** Only message values and integers can lose data unseen by verify. */
function elementCheck(
  field: protobuf.Field,
  cache: Map<protobuf.Type, ValueCheck>,
): ValueCheck | undefined {
  const nested = field.resolvedType;
  if (nested !== null && "fieldsArray" in nested) return messageCheck(nested, cache);
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

function eachValue(check: ValueCheck): ValueCheck {
  return (value) => {
    if (!isObject(value)) return null;
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
