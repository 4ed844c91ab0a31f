/**
 * Protobuf types -> JSON Schema (2020-12), shaped exactly as the gateway's
 * codec prints them for a route's JsonOptions (see src/codec/). Plain messages
 * and enums become `components/schemas` entries reached by `$ref`, so
 * recursive types are fine; well-known types are inlined in their ProtoJSON
 * form. One type may be needed in several styles (a request body in proto
 * names, a reply with every field printed...): each style a type depends on
 * gets its own component, named after the type plus what sets it apart.
 */
import protobuf from "protobufjs";
import { WRAPPERS } from "../codec/well-known.js";
import type { JsonOptions } from "../config/types.js";
import { TurnoutError } from "../errors.js";

export type JsonSchema = { [key: string]: unknown };

/** How one schema prints: the route's JsonOptions, and whether defaults are always there. */
export interface SchemaStyle {
  readonly names: JsonOptions["names"];
  readonly int64: JsonOptions["int64"];
  readonly enums: JsonOptions["enums"];
  /** Implicit-presence fields always printed (emitDefaults on a reply): listed as `required`. */
  readonly required: boolean;
}

/** The style of a reply (defaults printed are required) or of what a client sends (nothing is). */
export function styleOf(options: JsonOptions, direction: "request" | "response"): SchemaStyle {
  return {
    names: options.names,
    int64: options.int64,
    enums: options.enums,
    required: direction === "response" && options.emitDefaults,
  };
}

const NAMES = 1;
const INT64 = 2;
const ENUMS = 4;
const REQUIRED = 8;

const INT32_RANGE = { minimum: -2147483648, maximum: 2147483647 };
const UINT32_RANGE = { minimum: 0, maximum: 4294967295 };
const WIDE = new Set(["int64", "sint64", "sfixed64", "uint64", "fixed64"]);
const UNSIGNED_WIDE = new Set(["uint64", "fixed64"]);
const WKT = ".google.protobuf.";
/** Well-known messages printed as something other than an object of their fields. */
const SPECIAL = new Set([
  "Timestamp",
  "Duration",
  "FieldMask",
  "Struct",
  "Value",
  "ListValue",
  "Any",
  ...WRAPPERS,
]);

/** Exactly what ProtoJSON prints for Duration: up to 12 digits of seconds, 0-9 of fraction. */
export const DURATION_PATTERN = "^-?[0-9]{1,12}(\\.[0-9]{1,9})?s$";
const FIELD_MASK_PATH = "[a-z][A-Za-z0-9]*(\\.[a-z][A-Za-z0-9]*)*";
const FIELD_MASK_PATTERN = `^(${FIELD_MASK_PATH}(,${FIELD_MASK_PATH})*)?$`;
const INT64_PATTERN = "^-?(0|[1-9][0-9]{0,18})$";
const UINT64_PATTERN = "^(0|[1-9][0-9]{0,19})$";
const INTEGER_KEY = "^-?(0|[1-9][0-9]*)$";
/**
 * What the codec reads as a Timestamp: RFC 3339 with an upper-case T and Z or
 * a `+hh:mm` offset, 1-9 fraction digits, no leap second. The range (0001 to
 * 9999 in UTC) is left to the gateway: year 0000 with a negative offset is in
 * it, and a lookahead would not compile in RE2 (Go's and Rust's generators).
 */
export const TIMESTAMP_PATTERN =
  "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-5][0-9](\\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})$";
/** A fresh one each time: a schema handed out may get a description of its own. */
function timestampSchema(): JsonSchema {
  return { type: "string", format: "date-time", pattern: TIMESTAMP_PATTERN };
}
/** The least a double must stay below to round to a finite float32. */
const FLOAT32_LIMIT = 3.4028235677973366e38;

/** The name of a well-known special type ("Timestamp"), or undefined. */
export function specialName(type: protobuf.Type): string | undefined {
  if (!type.fullName.startsWith(WKT)) return undefined;
  const name = type.fullName.slice(WKT.length);
  return SPECIAL.has(name) ? name : undefined;
}

/** The scalar type a wrapper (google.protobuf.StringValue...) holds, or undefined. */
function wrapped(type: protobuf.ReflectionObject | null): string | undefined {
  if (!(type instanceof protobuf.Type)) return undefined;
  const name = specialName(type);
  return name !== undefined && WRAPPERS.has(name) ? type.fieldsById[1]!.type : undefined;
}

export function typeName(type: protobuf.ReflectionObject): string {
  return type.fullName.replace(/^\./, "");
}

/** The field's JSON key in a style. */
export function keyOf(field: protobuf.Field, names: JsonOptions["names"]): string {
  return names === "camel" ? field.jsonName : field.protoName;
}

/** A proto3 field without tracked presence: printed at its default under emitDefaults. */
export function isImplicit(field: protobuf.Field): boolean {
  if (field.repeated || field.map) return true;
  if (field.partOf !== null || field.hasPresence) return false;
  return !(field.resolve().resolvedType instanceof protobuf.Type);
}

function scalarSchema(type: string, style: Pick<SchemaStyle, "int64">): JsonSchema {
  switch (type) {
    case "int32":
    case "sint32":
    case "sfixed32":
      return { type: "integer", format: "int32", ...INT32_RANGE };
    case "uint32":
    case "fixed32":
      return { type: "integer", ...UINT32_RANGE };
    case "float":
    case "double":
      return floatSchema(type);
    case "bool":
      return { type: "boolean" };
    case "string":
      return { type: "string" };
    case "bytes":
      return { type: "string", format: "byte", contentEncoding: "base64" };
  }
  if (!WIDE.has(type))
    throw new TurnoutError("TURNOUT_ERR_INTERNAL", `openapi: unsupported scalar type ${type}`);
  return wideSchema(UNSIGNED_WIDE.has(type), style.int64);
}

function wideSchema(unsigned: boolean, int64: JsonOptions["int64"]): JsonSchema {
  if (int64 === "number") {
    return unsigned
      ? { type: "integer", minimum: 0, description: "uint64, printed exactly" }
      : { type: "integer", format: "int64", description: "int64, printed exactly" };
  }
  return {
    type: "string",
    pattern: unsigned ? UINT64_PATTERN : INT64_PATTERN,
    description: `${unsigned ? "uint64" : "int64"} as a decimal string`,
  };
}

function floatSchema(type: "float" | "double"): JsonSchema {
  const range =
    type === "float" ? { exclusiveMinimum: -FLOAT32_LIMIT, exclusiveMaximum: FLOAT32_LIMIT } : {};
  return {
    anyOf: [
      { type: "number", format: type, ...range },
      { type: "string", enum: ["NaN", "Infinity", "-Infinity"] },
    ],
  };
}

/** The value of a field's singular form as a path or query parameter, or undefined if it has none. */
export function paramSchema(field: protobuf.Field): JsonSchema | undefined {
  const resolved = field.resolve().resolvedType;
  if (resolved instanceof protobuf.Enum) {
    return { type: "string", enum: Object.keys(resolved.values) };
  }
  if (resolved instanceof protobuf.Type) return wellKnownParam(resolved);
  // A URL carries decimal text: a 64-bit value is an integer here, never quoted.
  return scalarSchema(field.type, { int64: "number" });
}

function wellKnownParam(type: protobuf.Type): JsonSchema | undefined {
  const name = specialName(type);
  if (name === "Timestamp") return timestampSchema();
  if (name === "Duration") return { type: "string", pattern: DURATION_PATTERN };
  if (name === "FieldMask") return { type: "string" };
  const scalar = wrapped(type);
  return scalar === undefined ? undefined : scalarSchema(scalar, { int64: "number" });
}

/** A schema that also allows null: a wrapper field set to null is "not set". */
function nullable(schema: JsonSchema): JsonSchema {
  if (typeof schema.type === "string") return { ...schema, type: [schema.type, "null"] };
  return { anyOf: [schema, { type: "null" }] };
}

interface Pending {
  readonly key: string;
  readonly target: protobuf.Type | protobuf.Enum;
  readonly bits: number;
  readonly refs: JsonSchema[];
  schema: JsonSchema | undefined;
}

/**
 * Collects the component schemas of every type and style asked for. `$ref`
 * objects are handed out at once and named in `components()`, when every
 * style of every type is known.
 */
export class SchemaRegistry {
  readonly #pending = new Map<string, Pending>();
  readonly #dims = new Map<protobuf.Type, number>();

  /** The schema of one value of `field` (an element of a list, a map's value). */
  valueSchema(field: protobuf.Field, style: SchemaStyle): JsonSchema {
    const resolved = field.resolve().resolvedType;
    if (resolved instanceof protobuf.Enum) return this.enumSchema(resolved, style);
    if (resolved instanceof protobuf.Type) return this.messageSchema(resolved, style);
    return scalarSchema(field.type, style);
  }

  /** The schema of a field's whole JSON value: a list, a map object or one value. */
  fieldSchema(field: protobuf.Field, style: SchemaStyle): JsonSchema {
    const value = this.valueSchema(field, style);
    if (field instanceof protobuf.MapField) {
      return {
        type: "object",
        propertyNames: mapKeySchema(field.keyType),
        additionalProperties: value,
      };
    }
    if (field.repeated) return { type: "array", items: value };
    return wrapped(field.resolvedType) === undefined ? value : nullable(value);
  }

  enumSchema(type: protobuf.Enum, style: SchemaStyle): JsonSchema {
    if (type.fullName === `${WKT}NullValue`) return { type: "null" };
    return this.#ref(type, style.enums === "number" ? ENUMS : 0);
  }

  /** A `$ref` to a plain message's component, or a well-known type's inline schema. */
  messageSchema(type: protobuf.Type, style: SchemaStyle): JsonSchema {
    const special = specialName(type);
    if (special !== undefined) return this.#wellKnown(type, special, style);
    return this.#ref(type, this.#bitsFor(type, style));
  }

  /**
   * The object schema of a plain message, inline, without the fields in
   * `omit` (bound from the path): for a `body: "*"` request.
   */
  objectSchema(type: protobuf.Type, style: SchemaStyle, omit: ReadonlySet<string>): JsonSchema {
    return this.#object(type, style, omit);
  }

  /** `components/schemas`, named; every `$ref` handed out points into it after this. */
  components(): Record<string, JsonSchema> {
    this.#fill();
    const byType = new Map<string, Pending[]>();
    for (const pending of this.#pending.values()) {
      const name = typeName(pending.target);
      byType.set(name, [...(byType.get(name) ?? []), pending]);
    }
    const out: Record<string, JsonSchema> = {};
    for (const [name, variants] of [...byType].sort(([a], [b]) => a.localeCompare(b))) {
      const differing = variants.reduce((acc, v) => acc | (v.bits ^ variants[0]!.bits), 0);
      for (const variant of variants.sort((a, b) => a.bits - b.bits)) {
        const component = componentName(name, variant.bits, differing);
        if (component in out)
          throw new TurnoutError(
            "TURNOUT_ERR_CONFIG",
            `openapi: two schemas would be named ${component}`,
          );
        out[component] = variant.schema!;
        for (const ref of variant.refs) ref.$ref = `#/components/schemas/${component}`;
      }
    }
    return out;
  }

  #ref(target: protobuf.Type | protobuf.Enum, bits: number): JsonSchema {
    const key = `${target.fullName}|${bits}`;
    let pending = this.#pending.get(key);
    if (pending === undefined) {
      pending = { key, target, bits, refs: [], schema: undefined };
      this.#pending.set(key, pending);
    }
    const ref: JsonSchema = { $ref: key };
    pending.refs.push(ref);
    return ref;
  }

  /** Builds the schemas of every component asked for, including those they refer to. */
  #fill(): void {
    for (let again = true; again; ) {
      again = false;
      for (const pending of [...this.#pending.values()]) {
        if (pending.schema !== undefined) continue;
        again = true;
        pending.schema =
          pending.target instanceof protobuf.Enum
            ? enumObject(pending.target, pending.bits)
            : this.#object(pending.target, styleFromBits(pending.bits), new Set());
      }
    }
  }

  #object(type: protobuf.Type, style: SchemaStyle, omit: ReadonlySet<string>): JsonSchema {
    const properties: Record<string, JsonSchema> = {};
    const required: string[] = [];
    const dependentSchemas: Record<string, JsonSchema> = {};
    for (const field of type.fieldsArray) {
      if (omit.has(field.name)) continue;
      const key = keyOf(field, style.names);
      properties[key] = this.#property(field, style);
      // A proto2 required field is in every reply (it does not decode without it);
      // a request type cannot hold one that a path param does not fill (refused at load).
      if ((style.required && isImplicit(field)) || field.required) required.push(key);
      const others = oneofPeers(field, style.names, omit);
      if (others.length > 0) dependentSchemas[key] = exclusive(others);
    }
    const schema: JsonSchema = { type: "object" };
    if (type.comment) schema.description = type.comment;
    schema.properties = properties;
    if (required.length > 0) schema.required = required;
    if (Object.keys(dependentSchemas).length > 0) schema.dependentSchemas = dependentSchemas;
    schema.additionalProperties = false;
    return schema;
  }

  #property(field: protobuf.Field, style: SchemaStyle): JsonSchema {
    const schema = this.fieldSchema(field, style);
    const notes = [field.comment, oneofNote(field, style.names), schema.description];
    const description = notes.filter(Boolean).join(" ");
    // Set on the object itself: a `$ref` handed out must stay the one the registry names.
    if (description !== "") schema.description = description;
    return schema;
  }

  #wellKnown(type: protobuf.Type, name: string, style: SchemaStyle): JsonSchema {
    switch (name) {
      case "Timestamp":
        return timestampSchema();
      case "Duration":
        return { type: "string", pattern: DURATION_PATTERN, description: 'seconds, e.g. "1.5s"' };
      case "FieldMask":
        return {
          type: "string",
          pattern: FIELD_MASK_PATTERN,
          description: "comma-separated paths",
        };
      case "Struct":
        return { type: "object" };
      case "Value":
        return {};
      case "ListValue":
        return { type: "array" };
      case "Any":
        return {
          type: "object",
          properties: { "@type": { type: "string" } },
          // An empty object is an unset Any; anything else names its type.
          anyOf: [{ required: ["@type"] }, { maxProperties: 0 }],
          description:
            'the "@type" URL, then the fields of that type (or "value" for a well-known one)',
        };
    }
    return scalarSchema(wrapped(type)!, style);
  }

  /** The style bits that matter to `type`: the others are cleared, so one component serves them. */
  #bitsFor(type: protobuf.Type, style: SchemaStyle): number {
    return bitsOf(style) & this.#dimsOf(type);
  }

  /** Which style options can change `type`'s schema, through every type it reaches. */
  #dimsOf(type: protobuf.Type): number {
    const known = this.#dims.get(type);
    if (known !== undefined) return known;
    const reached = reachable(type);
    for (const t of reached) this.#dims.set(t, ownDims(t));
    for (let changed = true; changed; ) {
      changed = false;
      for (const t of reached) {
        let dims = this.#dims.get(t)!;
        for (const child of messageChildren(t)) dims |= this.#dims.get(child) ?? 0;
        if (dims !== this.#dims.get(t)) {
          this.#dims.set(t, dims);
          changed = true;
        }
      }
    }
    return this.#dims.get(type)!;
  }
}

function bitsOf(style: SchemaStyle): number {
  return (
    (style.names === "camel" ? NAMES : 0) |
    (style.int64 === "number" ? INT64 : 0) |
    (style.enums === "number" ? ENUMS : 0) |
    (style.required ? REQUIRED : 0)
  );
}

function styleFromBits(bits: number): SchemaStyle {
  return {
    names: bits & NAMES ? "camel" : "proto",
    int64: bits & INT64 ? "number" : "string",
    enums: bits & ENUMS ? "number" : "name",
    required: (bits & REQUIRED) !== 0,
  };
}

/**
 * Names a variant by the options that set it apart from the type's other
 * variants, after a "-", which no protobuf name holds: `Thing_CamelNames` may
 * be a message of its own.
 */
function componentName(name: string, bits: number, differing: number): string {
  const parts: string[] = [];
  if (differing & NAMES) parts.push(bits & NAMES ? "CamelNames" : "ProtoNames");
  if (differing & INT64) parts.push(bits & INT64 ? "Int64Numbers" : "Int64Strings");
  if (differing & ENUMS) parts.push(bits & ENUMS ? "EnumNumbers" : "EnumNames");
  if (differing & REQUIRED && bits & REQUIRED) parts.push("AllFields");
  return parts.length === 0 ? name : `${name}-${parts.join("-")}`;
}

/** The plain message types `type` holds directly (well-known ones have fixed forms). */
function messageChildren(type: protobuf.Type): protobuf.Type[] {
  const out: protobuf.Type[] = [];
  for (const field of type.fieldsArray) {
    const resolved = field.resolve().resolvedType;
    if (resolved instanceof protobuf.Type && specialName(resolved) === undefined)
      out.push(resolved);
  }
  return out;
}

function reachable(type: protobuf.Type): Set<protobuf.Type> {
  const seen = new Set<protobuf.Type>();
  const stack = [type];
  while (stack.length > 0) {
    const t = stack.pop()!;
    if (seen.has(t)) continue;
    seen.add(t);
    stack.push(...messageChildren(t));
  }
  return seen;
}

/** The style options the type's own fields respond to. */
function ownDims(type: protobuf.Type): number {
  let dims = 0;
  for (const field of type.fieldsArray) {
    if (field.protoName !== field.jsonName) dims |= NAMES;
    if (isImplicit(field)) dims |= REQUIRED;
    const resolved = field.resolve().resolvedType;
    if (WIDE.has(wrapped(resolved) ?? field.type)) dims |= INT64;
    if (resolved instanceof protobuf.Enum && resolved.fullName !== `${WKT}NullValue`) dims |= ENUMS;
  }
  return dims;
}

/**
 * The enum's known values (names, or numbers with `enums: number`), or any
 * other int32: a value this proto has no name for (a sender on a newer proto)
 * is read and printed as its number in both styles. The branches exclude each
 * other, so a known value's number still fails the names style.
 */
function enumObject(type: protobuf.Enum, bits: number): JsonSchema {
  const entries = Object.entries(type.values);
  const numbers = [...new Set(entries.map(([, n]) => n))];
  const listing = entries.map(([name, n]) => `${name} = ${n}`).join(", ");
  const intro = type.comment ? `${type.comment} ` : "";
  const known =
    bits & ENUMS
      ? { type: "integer", enum: numbers }
      : { type: "string", enum: entries.map(([name]) => name) };
  const unknown = {
    type: "integer",
    format: "int32",
    ...INT32_RANGE,
    not: { enum: numbers },
    description: "A value this proto has no name for, as its number.",
  };
  const how = bits & ENUMS ? "by number" : "by name";
  return {
    anyOf: [known, unknown],
    description: `${intro}${listing}. Known values ${how}; any other int32 is a value no name is known for, printed as its number.`,
  };
}

function mapKeySchema(keyType: string): JsonSchema {
  if (keyType === "string") return { type: "string" };
  if (keyType === "bool") return { enum: ["true", "false"] };
  return { pattern: INTEGER_KEY };
}

/** The JSON keys of the other members of the field's oneof (proto3 `optional` is none). */
function oneofPeers(
  field: protobuf.Field,
  names: JsonOptions["names"],
  omit: ReadonlySet<string>,
): string[] {
  const oneof = realOneof(field);
  if (oneof === undefined) return [];
  return oneof.fieldsArray
    .filter((f) => f !== field && !omit.has(f.name))
    .map((f) => keyOf(f, names));
}

function realOneof(field: protobuf.Field): protobuf.OneOf | undefined {
  const oneof = field.partOf;
  if (oneof === null || field.options?.["proto3_optional"] === true) return undefined;
  return oneof;
}

function oneofNote(field: protobuf.Field, names: JsonOptions["names"]): string | undefined {
  const oneof = realOneof(field);
  if (oneof === undefined) return undefined;
  const members = oneof.fieldsArray.map((f) => keyOf(f, names)).join(", ");
  return `Member of oneof ${oneof.name}: at most one of ${members} may be set.`;
}

/** "None of these keys": what a set oneof member requires of its peers. */
function exclusive(others: readonly string[]): JsonSchema {
  const one = (key: string) => ({ required: [key] });
  return others.length === 1 ? { not: one(others[0]!) } : { not: { anyOf: others.map(one) } };
}
