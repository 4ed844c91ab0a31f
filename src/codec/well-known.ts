/**
 * The well-known types whose ProtoJSON form is not an object of fields:
 * Timestamp, Duration, the wrappers, Struct/Value/ListValue, FieldMask and
 * Any. Field names are taken by field number, so both protobufjs's bundled
 * definitions (camelCase names) and .proto copies (snake_case) work.
 */
import { isLosslessNumber } from "lossless-json";
import protobuf from "protobufjs";
import { quote, readString, SCALAR_KINDS, type ValueKind, type Writer } from "./kinds.js";
import { formatDouble, longToNumber } from "./numbers.js";
import { allowedWireTypes, checkUnknowns } from "./printer.js";
import { BadReply, BadValue, keySegment, rethrowUnder, show } from "./problems.js";
import { formatDuration, formatTimestamp, parseDuration, parseTimestamp } from "./time.js";

/** How the message codec hands out kinds, so Any and Struct can reach other types. */
export type KindResolver = (type: protobuf.Type) => ValueKind;

/** google.protobuf wrapper type names: their JSON form is the bare wrapped value. */
export const WRAPPERS: ReadonlySet<string> = new Set([
  "DoubleValue",
  "FloatValue",
  "Int64Value",
  "UInt64Value",
  "Int32Value",
  "UInt32Value",
  "BoolValue",
  "StringValue",
  "BytesValue",
]);

/** The special kind of a well-known type, or undefined for every other message. */
export function wellKnownKind(type: protobuf.Type, resolve: KindResolver): ValueKind | undefined {
  const fullName = type.fullName;
  if (!fullName.startsWith(".google.protobuf.")) return undefined;
  const name = fullName.slice(".google.protobuf.".length);
  if (name === "Timestamp") return timeKind(type, true);
  if (name === "Duration") return timeKind(type, false);
  if (WRAPPERS.has(name)) return wrapperKind(type);
  if (name === "FieldMask") return fieldMaskKind(type);
  if (name === "Any") return anyKind(type, resolve);
  if (name === "Struct" || name === "Value" || name === "ListValue") {
    return structKinds(type.parent as protobuf.Namespace)[name];
  }
  return undefined;
}

/** The protobufjs property name of field number `id`. */
function fieldName(type: protobuf.Type, id: number): string {
  const field = type.fieldsById[id];
  if (field === undefined) throw new Error(`${type.fullName} has no field ${id}`);
  return field.name;
}

/**
 * What plain messages check before printing (MessageKind's printer): protobufjs
 * keeps a known field that arrived with the wrong wire type in `$unknowns`
 * (when the reply is decoded keeping unknowns) and leaves the field at its
 * default, which must be a bad reply, not a printed default. One property
 * read per message when there is none.
 */
function wireTypeCheck(type: protobuf.Type): (m: { $unknowns?: Uint8Array[] }) => void {
  const allowed = allowedWireTypes(type);
  return (m) => {
    const unknowns = m.$unknowns;
    if (unknowns !== undefined) checkUnknowns(type, allowed, unknowns);
  };
}

/** A message kind with a fixed printer for every option variant. */
function messageKind(
  label: string,
  read: (value: unknown) => unknown,
  readParam: ((text: string) => unknown) | undefined,
  writer: (bits: number) => Writer,
  nullValue: unknown = undefined,
): ValueKind {
  return {
    label,
    read,
    readParam,
    nullValue,
    isMessage: true,
    writer,
    isDefault: () => false,
    defaultText: () => "null",
  };
}

function timeKind(type: protobuf.Type, timestamp: boolean): ValueKind {
  const seconds = fieldName(type, 1);
  const nanos = fieldName(type, 2);
  const label = timestamp ? "Timestamp" : "Duration";
  const parse = timestamp ? parseTimestamp : parseDuration;
  const format = timestamp ? formatTimestamp : formatDuration;
  const readParam = (text: string) => {
    const value = parse(text);
    const out: Record<string, number> = {};
    out[seconds] = value.seconds;
    out[nanos] = value.nanos;
    return out;
  };
  const check = wireTypeCheck(type);
  const write: Writer = (m) => {
    check(m);
    return `"${format(longToNumber(m[seconds]), m[nanos] ?? 0)}"`;
  };
  return messageKind(
    label,
    (v) => {
      if (typeof v === "string") return readParam(v);
      throw new BadValue(`expected ${label} as a string, got ${show(v)}`);
    },
    readParam,
    () => write,
  );
}

function wrapperKind(type: protobuf.Type): ValueKind {
  const valueField = type.fieldsById[1]!;
  const name = valueField.name;
  const inner = SCALAR_KINDS[valueField.type]!;
  const check = wireTypeCheck(type);
  const wrap = (value: unknown) => {
    const out: Record<string, unknown> = {};
    out[name] = value;
    return out;
  };
  return messageKind(
    type.name,
    (v) => wrap(inner.read(v)),
    (s) => wrap(inner.readParam!(s)),
    (bits) => {
      const write = inner.writer(bits);
      const empty = inner.defaultText(bits);
      return (m) => {
        check(m);
        const value = m[name];
        return value == null ? empty : write(value);
      };
    },
  );
}

const CAMEL_PATH = /^[a-z][A-Za-z0-9]*(?:\.[a-z][A-Za-z0-9]*)*$/;
const SNAKE_PATH = /^[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)*$/;

const toSnake = (path: string) => path.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
const toCamel = (path: string) => path.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

function fieldMaskKind(type: protobuf.Type): ValueKind {
  const paths = fieldName(type, 1);
  // Each path is lowerCamel (converted) or, in URLs only, snake_case (kept):
  // a mix such as "page_Size" would convert to a name no field has.
  const mask = (text: string, inUrl: boolean) => {
    const list = text === "" ? [] : text.split(",");
    const out: Record<string, string[]> = {};
    out[paths] = list.map((path) => {
      if (CAMEL_PATH.test(path)) return toSnake(path);
      if (inUrl && SNAKE_PATH.test(path)) return path;
      const expected = inUrl ? "lowerCamel or snake_case names" : "lowerCamel names";
      throw new BadValue(`invalid FieldMask path ${show(path)}: expected ${expected}`);
    });
    return out;
  };
  // A path whose lowerCamel form reads back as another path (foo__bar, fooBar,
  // foo_3_bar) or as two (a,b) cannot be printed: the conformance suite's rule.
  const printable = (path: string) => {
    const camel = toCamel(path);
    if (CAMEL_PATH.test(camel) && toSnake(camel) === path) return camel;
    throw new BadReply(`FieldMask path ${show(path)} has no lowerCamel form that reads back`);
  };
  const check = wireTypeCheck(type);
  const write: Writer = (m) => {
    check(m);
    return JSON.stringify(((m[paths] ?? []) as string[]).map(printable).join(","));
  };
  return messageKind(
    "FieldMask",
    (v) => {
      if (typeof v === "string") return mask(v, false);
      throw new BadValue(`expected FieldMask as a string like "a.b,cD", got ${show(v)}`);
    },
    // In URLs, snake_case paths are accepted too, as grpc-gateway does.
    (s) => mask(s, true),
    () => write,
  );
}

interface StructKinds {
  Struct: ValueKind;
  Value: ValueKind;
  ListValue: ValueKind;
}

const structCache = new WeakMap<protobuf.Namespace, StructKinds>();

/** Struct, Value and ListValue refer to each other, so they are built together. */
function structKinds(ns: protobuf.Namespace): StructKinds {
  let kinds = structCache.get(ns);
  if (kinds !== undefined) return kinds;
  const structType = ns.lookupType("Struct");
  const valueType = ns.lookupType("Value");
  const listType = ns.lookupType("ListValue");
  const FIELDS = fieldName(structType, 1);
  const VALUES = fieldName(listType, 1);
  const [NULL, NUMBER, STRING, BOOL, STRUCT, LIST] = [1, 2, 3, 4, 5, 6].map((id) =>
    fieldName(valueType, id),
  ) as [string, string, string, string, string, string];
  const one = (key: string, value: unknown) => {
    const out: Record<string, unknown> = {};
    out[key] = value;
    return out;
  };
  const nullValue = Object.freeze(one(NULL, 0));
  const checkStruct = wireTypeCheck(structType);
  const checkValue = wireTypeCheck(valueType);
  const checkList = wireTypeCheck(listType);

  const readValue = (v: unknown): unknown => {
    switch (typeof v) {
      case "string":
        return one(STRING, readString(v));
      case "boolean":
        return one(BOOL, v);
      case "number":
        if (Number.isFinite(v)) return one(NUMBER, v);
        break;
      case "object":
        if (v === null) return nullValue;
        if (Array.isArray(v)) return one(LIST, readList(v));
        if (isLosslessNumber(v)) {
          const n = Number(v.value);
          if (Number.isFinite(n)) return one(NUMBER, n);
          break;
        }
        return one(STRUCT, readStruct(v));
    }
    throw new BadValue(`not a JSON value for google.protobuf.Value: ${show(v)}`);
  };
  const readList = (v: unknown): unknown => {
    if (!Array.isArray(v)) throw new BadValue(`expected ListValue as an array, got ${show(v)}`);
    const values = new Array(v.length);
    let i = 0;
    try {
      for (; i < v.length; i++) values[i] = readValue(v[i]);
    } catch (error) {
      rethrowUnder(error, `[${i}]`);
    }
    return one(VALUES, values);
  };
  const readStruct = (v: unknown): unknown => {
    if (typeof v !== "object" || v === null || Array.isArray(v) || isLosslessNumber(v)) {
      throw new BadValue(`expected Struct as an object, got ${show(v)}`);
    }
    const fields: Record<string, unknown> = {};
    let key = "";
    try {
      for (key in v) {
        const value = readValue((v as Record<string, unknown>)[readString(key)]);
        if (key === "__proto__") Object.defineProperty(fields, key, { value, enumerable: true });
        else fields[key] = value;
      }
    } catch (error) {
      rethrowUnder(error, keySegment(key));
    }
    return one(FIELDS, fields);
  };

  // Members of the oneof read their type default from the prototype when
  // unset: only own properties count.
  const writeValue: Writer = (m) => {
    checkValue(m);
    if (Object.hasOwn(m, NUMBER)) {
      const n = m[NUMBER];
      if (!Number.isFinite(n)) throw new BadReply(`Value number_value ${n} is not valid JSON`);
      return formatDouble(n);
    }
    if (Object.hasOwn(m, STRING)) return quote(m[STRING]);
    if (Object.hasOwn(m, BOOL)) return m[BOOL] ? "true" : "false";
    if (m[STRUCT] != null) return writeStruct(m[STRUCT]);
    if (m[LIST] != null) return writeList(m[LIST]);
    return "null"; // null_value, or a Value with no kind set
  };
  const writeList: Writer = (m) => {
    checkList(m);
    const values: unknown[] = m[VALUES] ?? [];
    let out = "[";
    for (let i = 0; i < values.length; i++) out += (i === 0 ? "" : ",") + writeValue(values[i]);
    return `${out}]`;
  };
  const writeStruct: Writer = (m) => {
    checkStruct(m);
    const fields: Record<string, unknown> = m[FIELDS] ?? {};
    let out = "";
    for (const key of Object.keys(fields)) {
      out += `${out === "" ? "{" : ","}${quote(key)}:${writeValue(fields[key])}`;
    }
    return out === "" ? "{}" : `${out}}`;
  };

  kinds = {
    Struct: messageKind("Struct", readStruct, undefined, () => writeStruct),
    Value: messageKind("Value", readValue, undefined, () => writeValue, nullValue),
    ListValue: messageKind("ListValue", readList, undefined, () => writeList),
  };
  structCache.set(ns, kinds);
  return kinds;
}

interface AnyTarget {
  type: protobuf.Type;
  kind: ValueKind;
  writers: Array<Writer | undefined>;
}

/** The path segment of an Any's "@type" key. */
const TYPE_KEY = keySegment("@type");

/** Any: `{"@type": url, ...fields}`, or `{"@type": url, "value": ...}` for special types. */
function anyKind(type: protobuf.Type, resolve: KindResolver): ValueKind {
  const TYPE_URL = fieldName(type, 1);
  const VALUE = fieldName(type, 2);
  const root = type.root;
  /** By full type name, so the cache is bounded by the schema, not by clients. */
  const targets = new Map<string, AnyTarget>();
  const target = (url: string): AnyTarget | undefined => {
    const name = url.slice(url.lastIndexOf("/") + 1);
    let found = targets.get(name);
    if (found === undefined && name !== "" && !name.startsWith(".")) {
      let looked: unknown;
      try {
        looked = root.lookup(`.${name}`);
      } catch {
        looked = undefined;
      }
      // The full name only: protobufjs also resolves a bare "Inner", which the
      // worker's resolver cannot, and which two packages may both define.
      if (!(looked instanceof protobuf.Type) || looked.fullName !== `.${name}`) return undefined;
      found = { type: looked, kind: resolve(looked), writers: [] };
      targets.set(name, found);
    }
    return found;
  };

  const read = (v: unknown): unknown => readNestedAny(() => readAny(v));
  const readAny = (v: unknown): unknown => {
    if (typeof v !== "object" || v === null || Array.isArray(v) || isLosslessNumber(v)) {
      throw new BadValue(`expected Any as an object, got ${show(v)}`);
    }
    const object = v as Record<string, unknown>;
    const url = object["@type"];
    if (url === undefined && Object.keys(object).length === 0) return {};
    if (typeof url !== "string") throw new BadValue('Any needs a "@type" string');
    try {
      readString(url); // type_url is a protobuf string too: no lone surrogate
    } catch (error) {
      rethrowUnder(error, TYPE_KEY);
    }
    const found = target(url);
    if (found === undefined) throw new BadValue(`unknown type in "@type": ${show(url)}`);
    let inner: unknown;
    if (!isWrappedInAny(found)) {
      inner = found.kind.readEmbedded?.(object);
    } else {
      let key = "value";
      try {
        for (key in object) {
          if (key !== "@type" && key !== "value") {
            throw new BadValue(`unknown field ${show(key)} in Any of ${found.kind.label}`);
          }
        }
        key = "value";
        // Empty may leave its `value` out (Go's protojson reads it so too).
        inner = object.value === undefined && isEmpty(found) ? {} : found.kind.read(object.value);
      } catch (error) {
        rethrowUnder(error, keySegment(key));
      }
    }
    const out: Record<string, unknown> = {};
    out[TYPE_URL] = url;
    out[VALUE] = found.type.encode(inner as object).finish();
    return out;
  };

  const check = wireTypeCheck(type);
  const writer = (bits: number): Writer => {
    return (m) => {
      check(m);
      const url: unknown = m[TYPE_URL];
      if (typeof url !== "string" || url === "") return "{}";
      const found = target(url);
      if (found === undefined) throw new BadReply(`Any holds an unknown type ${show(url)}`);
      let decoded: unknown;
      try {
        // Unknowns kept, as for the reply itself, so the embedded message's
        // printer sees a field with the wrong wire type.
        const reader = protobuf.Reader.create(m[VALUE] ?? new Uint8Array(0));
        reader.discardUnknown = false;
        decoded = found.type.decode(reader);
      } catch (error) {
        throw new BadReply(`Any of ${url}: ${error instanceof Error ? error.message : error}`);
      }
      found.writers[bits] ??= found.kind.writer(bits);
      const text = found.writers[bits](decoded);
      const typeKey = `{"@type":${JSON.stringify(url)}`;
      if (isWrappedInAny(found)) return `${typeKey},"value":${text}}`;
      return text === "{}" ? `${typeKey}}` : `${typeKey},${text.slice(1)}`;
    };
  };
  return messageKind("Any", read, undefined, writer);
}

/**
 * Inside an Any, a type with a JSON form of its own (Timestamp, wrappers,
 * Struct...) goes under "value", and so does Empty: Go's protojson, the
 * reference, writes `{"@type": ".../google.protobuf.Empty", "value": {}}`.
 */
function isWrappedInAny(found: { type: protobuf.Type; kind: ValueKind }): boolean {
  return found.kind.readEmbedded === undefined || isEmpty(found);
}

function isEmpty(found: { type: protobuf.Type }): boolean {
  return found.type.fullName === ".google.protobuf.Empty";
}

/** Anys being read at once, one inside the other: each Any's message is encoded on its own. */
let anyDepth = 0;
/** An Any holds a message, itself at least one level: 50 of them pass protobuf's 100. */
const MAX_ANY_DEPTH = 50;

/**
 * Reads an Any with `read`, refusing Anys nested past protobuf's 100 message
 * levels: each is encoded to bytes on its own, so protobufjs's depth check
 * never sees them add up.
 */
function readNestedAny(read: () => unknown): unknown {
  if (anyDepth >= MAX_ANY_DEPTH) {
    throw new BadValue("Any nests too deeply (protobuf's limit is 100 message levels)");
  }
  anyDepth++;
  try {
    return read();
  } finally {
    anyDepth--;
  }
}
