/**
 * What canonical ProtoJSON hides but a client sees: a value spelled as another
 * JSON type. The normalizer reads `"1"` and `1` for an int32 alike, and `null`
 * as the default (`[]`, `false`, `{}`), as every ProtoJSON parser must; a
 * client computing `quantity + 1` or `tags.length` sees the difference, and no
 * route `json` option makes the NATS path print a 32-bit int as a string or a
 * list as null. Compared only where both answers have the field: present or
 * absent stays the normalizer's business (defaults printed or not do not
 * count), and so do the spellings ProtoJSON gives a choice of (int64 as string
 * or number, enum name or number).
 */
import { isLosslessNumber } from "lossless-json";
import protobuf from "protobufjs";
import { isJsonObject } from "../codec/fields.js";
import { IGNORED } from "./ignore.js";
import { childPath, type FieldDiff, fieldDiff } from "./json-diff.js";

type Spelling = "null" | "string" | "number" | "boolean" | "any";

/** Scalar types whose JSON spelling is one type only (bar the NaN and Infinity strings). */
const ONE_SPELLING = new Set([
  "int32",
  "uint32",
  "sint32",
  "fixed32",
  "sfixed32",
  "float",
  "double",
  "bool",
]);
/** The wrappers of those types, printed as the bare value. */
const WRAPPED: ReadonlyMap<string, string> = new Map([
  [".google.protobuf.Int32Value", "int32"],
  [".google.protobuf.UInt32Value", "uint32"],
  [".google.protobuf.FloatValue", "float"],
  [".google.protobuf.DoubleValue", "double"],
  [".google.protobuf.BoolValue", "bool"],
]);
const NON_FINITE = new Set(["NaN", "Infinity", "-Infinity"]);

export function spellingDiffs(
  type: protobuf.Type,
  primary: unknown,
  mirror: unknown,
  limit: number,
): FieldDiff[] {
  const out: FieldDiff[] = [];
  walkMessage(type, primary, mirror, "$", out, limit);
  return out;
}

function walkMessage(
  type: protobuf.Type,
  a: unknown,
  b: unknown,
  path: string,
  out: FieldDiff[],
  limit: number,
): void {
  // isJsonObject is false for an IGNORED array element: it is not walked.
  if (!isJsonObject(a) || !isJsonObject(b)) return;
  for (const field of type.fieldsArray) {
    const inA = fieldValue(a, field);
    const inB = fieldValue(b, field);
    if (inA === undefined || inB === undefined) continue;
    const at = childPath(path, field.jsonName);
    if (inA === null || inB === null) {
      if (inA !== inB && out.length < limit) out.push(fieldDiff(at, inA, inB));
    } else if (field.map && isJsonObject(inA) && isJsonObject(inB)) {
      for (const key of Object.keys(inA)) {
        if (Object.hasOwn(inB, key))
          walkValue(field, inA[key], inB[key], childPath(at, key), out, limit);
      }
    } else if (field.repeated && Array.isArray(inA) && Array.isArray(inB)) {
      for (let i = 0; i < Math.min(inA.length, inB.length); i++) {
        walkValue(field, inA[i], inB[i], `${at}[${i}]`, out, limit);
      }
    } else if (!field.repeated && !field.map) {
      walkValue(field, inA, inB, at, out, limit);
    }
  }
}

function walkValue(
  field: protobuf.Field,
  a: unknown,
  b: unknown,
  path: string,
  out: FieldDiff[],
  limit: number,
): void {
  if (a === IGNORED || b === IGNORED) return;
  const type = field.resolvedType;
  if (type instanceof protobuf.Type && !WRAPPED.has(type.fullName)) {
    // Well-known types other than wrappers have one spelling each, or hold any JSON.
    if (!type.fullName.startsWith(".google.protobuf.")) walkMessage(type, a, b, path, out, limit);
    return;
  }
  const scalar = type instanceof protobuf.Type ? WRAPPED.get(type.fullName)! : field.type;
  if (spellingOf(scalar, a) !== spellingOf(scalar, b) && out.length < limit) {
    out.push(fieldDiff(path, a, b));
  }
}

function spellingOf(scalar: string, value: unknown): Spelling {
  if (!ONE_SPELLING.has(scalar)) return "any";
  if (value === null) return "null";
  if (typeof value === "string") return NON_FINITE.has(value) ? "number" : "string";
  if (typeof value === "number" || isLosslessNumber(value)) return "number";
  return typeof value === "boolean" ? "boolean" : "any";
}

/** The field's value under its JSON name or its proto name, as either side may print it. */
function fieldValue(object: Record<string, unknown>, field: protobuf.Field): unknown {
  if (Object.hasOwn(object, field.jsonName)) return object[field.jsonName];
  return Object.hasOwn(object, field.name) ? object[field.name] : undefined;
}
