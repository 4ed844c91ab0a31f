/**
 * A `ValueKind` is everything the codec knows about one protobuf value type:
 * how to read it from JSON and from a URL parameter, how to print it for each
 * combination of JsonOptions, and its default. Scalar kinds are built once per
 * process, enum kinds once per enum; message kinds live in message-codec.ts
 * and well-known.ts.
 */
import type protobuf from "protobufjs";
import type { JsonOptions } from "../config/types.js";
import { decodeBase64, encodeBase64 } from "./base64.js";
import {
  formatDouble,
  formatFloat,
  type IntKind,
  isZeroLong,
  longToDecimal,
  readFloat,
  readFloatParam,
  readInteger,
  readIntegerParam,
} from "./numbers.js";
import { BadValue, show } from "./problems.js";

/** JsonOptions as 4 bits, so a printer variant is found by array index. */
export const CAMEL = 1;
export const INT64_NUMBER = 2;
export const ENUM_NUMBER = 4;
export const EMIT_DEFAULTS = 8;
export const OPTION_VARIANTS = 16;

export function optionBits(options: JsonOptions): number {
  return (
    (options.names === "camel" ? CAMEL : 0) |
    (options.int64 === "number" ? INT64_NUMBER : 0) |
    (options.enums === "number" ? ENUM_NUMBER : 0) |
    (options.emitDefaults ? EMIT_DEFAULTS : 0)
  );
}

/** Prints one present value as JSON text. */
// biome-ignore lint/suspicious/noExplicitAny: values are whatever protobufjs decoded.
export type Writer = (value: any) => string;

export interface ValueKind {
  /** For error messages: "int32", "enum users.v1.Tier", "users.v1.Address". */
  readonly label: string;
  /** A non-null JSON value -> what protobufjs encodes; throws BadValue. */
  read(value: unknown): unknown;
  /** A path or query parameter -> what protobufjs encodes; undefined: no string form. */
  readonly readParam: ((text: string) => unknown) | undefined;
  /** What JSON null stands for (google.protobuf.Value, NullValue); undefined: null = not set. */
  readonly nullValue: unknown;
  /** Messages always track presence; scalars and enums have a default instead. */
  readonly isMessage: boolean;
  /** The printer of present values for one option variant (bits from `optionBits`). */
  writer(bits: number): Writer;
  /** Whether `value` is the implicit-presence default (0, "", false, empty bytes). */
  isDefault(value: unknown): boolean;
  /** The default as JSON text, for emitDefaults. */
  defaultText(bits: number): string;
  /** Plain messages only: reads the fields of an Any's object, skipping its "@type". */
  readonly readEmbedded?: (object: Record<string, unknown>) => unknown;
}

function scalar(
  label: string,
  read: (value: unknown) => unknown,
  readParam: (text: string) => unknown,
  write: Writer,
  isDefault: (value: unknown) => boolean,
  defaultText: string,
): ValueKind {
  return {
    label,
    read,
    readParam,
    nullValue: undefined,
    isMessage: false,
    writer: () => write,
    isDefault,
    defaultText: () => defaultText,
  };
}

const isZero = (v: unknown) => v === 0 && 1 / v > 0;
const writeNumber: Writer = (v: number) => `${v}`;

function integer(kind: "int32" | "uint32"): ValueKind {
  return scalar(
    kind,
    (v) => readInteger(kind, v),
    (s) => readIntegerParam(kind, s),
    writeNumber,
    (v) => v === 0,
    "0",
  );
}

function long(kind: "int64" | "uint64"): ValueKind {
  const unsigned = kind === "uint64";
  const asString: Writer = (v) => `"${longToDecimal(v, unsigned)}"`;
  const asNumber: Writer = (v) => longToDecimal(v, unsigned);
  return {
    label: kind,
    read: (v) => readInteger(kind, v),
    readParam: (s) => readIntegerParam(kind, s),
    nullValue: undefined,
    isMessage: false,
    writer: (bits) => (bits & INT64_NUMBER ? asNumber : asString),
    isDefault: isZeroLong,
    defaultText: (bits) => (bits & INT64_NUMBER ? "0" : '"0"'),
  };
}

function float(float32: boolean): ValueKind {
  return scalar(
    float32 ? "float" : "double",
    (v) => readFloat(float32, v),
    (s) => readFloatParam(float32, s),
    float32 ? formatFloat : formatDouble,
    isZero,
    "0",
  );
}

function readBool(v: unknown): boolean {
  if (typeof v === "boolean") return v;
  throw new BadValue(`expected bool (true or false), got ${show(v)}`);
}

function readBoolParam(s: string): boolean {
  if (s === "true") return true;
  if (s === "false") return false;
  throw new BadValue(`invalid bool value: ${show(s)} (expected true or false)`);
}

/** Characters JSON needs escaped, and surrogates (left to JSON.stringify to check). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it looks for.
const NEEDS_ESCAPE = /[\u0000-\u001f"\\\ud800-\udfff]/;

/**
 * A string as JSON text. JSON.stringify is slow for the short strings records
 * are made of; most need no escaping, which a scan proves cheaply.
 */
export function quote(value: string): string {
  if (value.length < 42) {
    for (let i = 0; i < value.length; i++) {
      const c = value.charCodeAt(i);
      if (c < 32 || c === 34 || c === 92 || (c >= 0xd800 && c <= 0xdfff)) {
        return JSON.stringify(value);
      }
    }
    return `"${value}"`;
  }
  return NEEDS_ESCAPE.test(value) ? JSON.stringify(value) : `"${value}"`;
}

/** Node 20 has it; TypeScript's ES2023 lib does not declare it yet. */
interface WellFormed {
  isWellFormed(): boolean;
}

export function readString(v: unknown): string {
  if (typeof v !== "string") throw new BadValue(`expected string, got ${show(v)}`);
  // protobuf strings are UTF-8: a lone surrogate would make the worker's decoder fail.
  if (!(v as unknown as WellFormed).isWellFormed()) {
    throw new BadValue("string holds a lone UTF-16 surrogate (not valid Unicode)");
  }
  return v;
}

function readBytesParam(s: string): Uint8Array {
  const bytes = decodeBase64(s);
  if (bytes === undefined) throw new BadValue(`invalid base64 for bytes: ${show(s)}`);
  return bytes;
}

function readBytes(v: unknown): Uint8Array {
  if (typeof v !== "string")
    throw new BadValue(`expected bytes as a base64 string, got ${show(v)}`);
  return readBytesParam(v);
}

const INT32 = integer("int32");
const UINT32 = integer("uint32");
const INT64 = long("int64");
const UINT64 = long("uint64");

/** The kind of every protobuf scalar type, by its .proto name. */
export const SCALAR_KINDS: Readonly<Record<string, ValueKind>> = {
  int32: INT32,
  sint32: INT32,
  sfixed32: INT32,
  uint32: UINT32,
  fixed32: UINT32,
  int64: INT64,
  sint64: INT64,
  sfixed64: INT64,
  uint64: UINT64,
  fixed64: UINT64,
  float: float(true),
  double: float(false),
  bool: scalar(
    "bool",
    readBool,
    readBoolParam,
    (v) => (v ? "true" : "false"),
    (v) => !v,
    "false",
  ),
  string: scalar(
    "string",
    readString,
    (s) => s,
    quote,
    (v) => v === "",
    '""',
  ),
  bytes: scalar(
    "bytes",
    readBytes,
    readBytesParam,
    (v: Uint8Array) => `"${encodeBase64(v)}"`,
    (v) => (v as Uint8Array).length === 0,
    '""',
  ),
};

/** The integer kind behind a 32/64-bit scalar type name, for map keys. */
export function intKindOf(type: string): IntKind | undefined {
  const kind = SCALAR_KINDS[type];
  if (kind === INT32 || kind === UINT32 || kind === INT64 || kind === UINT64) {
    return kind.label as IntKind;
  }
  return undefined;
}

const enumKinds = new WeakMap<protobuf.Enum, ValueKind>();

/** Enums: by name or number in; by name (numbers not in the enum as numbers) or number out. */
export function enumKind(type: protobuf.Enum): ValueKind {
  let kind = enumKinds.get(type);
  if (kind === undefined) {
    kind = compileEnum(type);
    enumKinds.set(type, kind);
  }
  return kind;
}

function compileEnum(type: protobuf.Enum): ValueKind {
  const label = `enum ${type.fullName.replace(/^\./, "")}`;
  const byName = new Map<string, number>(Object.entries(type.values));
  const quotedById = new Map<number, string>();
  for (const [id, name] of Object.entries(type.valuesById)) {
    quotedById.set(Number(id), JSON.stringify(name));
  }
  const first = Object.values(type.values)[0] ?? 0;
  const isNullValue = type.fullName === ".google.protobuf.NullValue";

  const read = (v: unknown): number => {
    if (typeof v === "string") {
      const n = byName.get(v);
      if (n !== undefined) return n;
      throw new BadValue(`unknown ${label} value name ${show(v)}`);
    }
    if (typeof v === "number") {
      if (Number.isInteger(v) && v >= -2147483648 && v <= 2147483647) return v;
      throw new BadValue(`invalid ${label} value: ${show(v)}`);
    }
    throw new BadValue(`expected ${label} (a name or a number), got ${show(v)}`);
  };
  const readParam = (s: string): number => {
    const n = byName.get(s);
    if (n !== undefined) return n;
    if (/^-?\d+$/.test(s)) return read(Number(s));
    throw new BadValue(`unknown ${label} value name ${show(s)}`);
  };
  const writeName: Writer = (v: number) => quotedById.get(v) ?? `${v}`;
  return {
    label,
    read,
    readParam,
    nullValue: isNullValue ? 0 : undefined,
    isMessage: false,
    writer: (bits) => (isNullValue ? () => "null" : bits & ENUM_NUMBER ? writeNumber : writeName),
    isDefault: (v) => v === first,
    defaultText: (bits) =>
      isNullValue ? "null" : bits & ENUM_NUMBER ? `${first}` : writeName(first),
  };
}
