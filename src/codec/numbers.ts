/**
 * Numbers between JSON and protobuf: exact integer ranges for the 32- and
 * 64-bit kinds, float32/double rules, and printing 64-bit values and floats
 * without going through a rounding JS number.
 */
import { isLosslessNumber } from "lossless-json";
import { BadValue, show } from "./problems.js";

export type IntKind = "int32" | "uint32" | "int64" | "uint64";

const RANGES: Record<IntKind, readonly [bigint, bigint]> = {
  int32: [-(2n ** 31n), 2n ** 31n - 1n],
  uint32: [0n, 2n ** 32n - 1n],
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint64: [0n, 2n ** 64n - 1n],
};

/** The same ranges as JS numbers; a safe integer is always inside the 64-bit ones. */
const NUMBER_RANGES: Record<IntKind, readonly [number, number]> = {
  int32: [-2147483648, 2147483647],
  uint32: [0, 4294967295],
  int64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  uint64: [0, Number.MAX_SAFE_INTEGER],
};

/** A JSON number's text: what ProtoJSON accepts inside a string for a number field. */
const JSON_NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;
/** Up to 15 digits: always a safe integer, converted without BigInt. */
const SHORT_INT = /^-?(?:0|[1-9]\d{0,14})$/;
/** Decimal integer in a path or query parameter (as Go's strconv.ParseInt takes it). */
const PARAM_INT = /^[+-]?\d+$/;

/** The integer a JSON number text denotes, "fraction" if it has one, "huge" past any range. */
function exactInteger(text: string): bigint | "fraction" | "huge" {
  const match = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(text)!;
  const sign = match[1]!;
  let digits = (match[2]! + (match[3] ?? "")).replace(/^0+/, "");
  let exponent = Number(match[4] ?? "0") - (match[3]?.length ?? 0);
  if (digits === "") return 0n;
  if (exponent < 0) {
    // Counted, not /0+$/: that regex is quadratic on a long run of zeros (a 100 KB body took 12 s).
    let zeros = 0;
    while (zeros < digits.length && digits.charCodeAt(digits.length - 1 - zeros) === 48) zeros++;
    if (zeros < -exponent) return "fraction";
    digits = digits.slice(0, digits.length + exponent);
    exponent = 0;
  }
  if (digits.length + exponent > 40) return "huge";
  return BigInt(sign + digits + "0".repeat(exponent));
}

function outOfRange(kind: IntKind, value: unknown): BadValue {
  return new BadValue(`${kind} value out of range: ${show(value)}`);
}

/** An integer from its exact value, as protobufjs takes it: a number when safe, else the decimal. */
function fromBig(kind: IntKind, value: bigint, original: unknown): number | string {
  const [min, max] = RANGES[kind];
  if (value < min || value > max) throw outOfRange(kind, original);
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : value.toString();
}

function fromNumberText(kind: IntKind, text: string, original: unknown): number | string {
  const exact = exactInteger(text);
  if (exact === "fraction")
    throw new BadValue(`${kind} value is not an integer: ${show(original)}`);
  if (exact === "huge") throw outOfRange(kind, original);
  return fromBig(kind, exact, original);
}

/**
 * A JSON value for an integer field: a number, a LosslessNumber or a string
 * holding a JSON number; integral (1e2 is 100, 1.5 is refused) and in range.
 * 64-bit values past 2^53 come back as decimal strings, never rounded.
 */
export function readInteger(kind: IntKind, value: unknown): number | string {
  if (typeof value === "number") {
    if (Number.isSafeInteger(value)) {
      const [min, max] = NUMBER_RANGES[kind];
      if (value >= min && value <= max) return value;
      throw outOfRange(kind, value);
    }
    if (!Number.isFinite(value) || !Number.isInteger(value)) {
      throw Number.isFinite(value)
        ? new BadValue(`${kind} value is not an integer: ${show(value)}`)
        : outOfRange(kind, value);
    }
    // Integral but past 2^53. Digit runs that long went through the lossless
    // parser, so this came from an exponent form or from code: it may already
    // be rounded, so refuse it rather than guess (unless it is out of range anyway).
    const [min, max] = RANGES[kind];
    const exact = BigInt(value);
    if (exact < min || exact > max) throw outOfRange(kind, value);
    throw new BadValue(
      `${kind} value ${show(value)} is not exact as a number; send it as a string`,
    );
  }
  if (typeof value === "string") {
    if (SHORT_INT.test(value)) return readInteger(kind, Number(value));
    if (!JSON_NUMBER.test(value)) throw new BadValue(`invalid ${kind} value: ${show(value)}`);
    return fromNumberText(kind, value, value);
  }
  if (isLosslessNumber(value)) return fromNumberText(kind, value.value, value);
  throw new BadValue(`expected ${kind} (a number or a numeric string), got ${show(value)}`);
}

/** A path or query parameter for an integer field: decimal digits only. */
export function readIntegerParam(kind: IntKind, text: string): number | string {
  if (!PARAM_INT.test(text)) throw new BadValue(`invalid ${kind} value: ${show(text)}`);
  // BigInt of a URL-long digit string costs milliseconds: no 64-bit value needs 21 digits.
  if (text.replace(/^[+-]?0*/, "").length > 20) throw outOfRange(kind, text);
  return fromBig(kind, BigInt(text), text);
}

/** A JSON value for a float or double field: number, numeric string, "NaN", "Infinity", "-Infinity". */
export function readFloat(float32: boolean, value: unknown): number {
  let n: number;
  if (typeof value === "number") n = value;
  else if (typeof value === "string") n = floatFromString(value);
  else if (isLosslessNumber(value)) n = Number(value.value);
  else {
    throw new BadValue(
      `expected ${float32 ? "float" : "double"} (a number or a numeric string), got ${show(value)}`,
    );
  }
  // A float32 is in range when it rounds to a finite float32: 3.4028235e+38, the
  // shortest text of FLT_MAX (which we print), is above FLT_MAX as a double.
  if (
    Number.isFinite(n) ? float32 && !Number.isFinite(Math.fround(n)) : typeof value !== "string"
  ) {
    throw new BadValue(`${float32 ? "float" : "double"} value out of range: ${show(value)}`);
  }
  return n;
}

/** A parameter for a float or double field: same forms as in JSON strings. */
export function readFloatParam(float32: boolean, text: string): number {
  return readFloat(float32, text);
}

function floatFromString(text: string): number {
  if (text === "NaN") return Number.NaN;
  if (text === "Infinity") return Number.POSITIVE_INFINITY;
  if (text === "-Infinity") return Number.NEGATIVE_INFINITY;
  if (!JSON_NUMBER.test(text)) throw new BadValue(`invalid number: ${show(text)}`);
  const n = Number(text);
  if (!Number.isFinite(n)) throw new BadValue(`number out of range: ${show(text)}`);
  return n;
}

/** Like protobufjs's Long (duck-typed: protobufjs may load another copy of `long`). */
interface LongLike {
  low: number;
  high: number;
  unsigned: boolean;
  toString(): string;
}

/** The exact decimal of a 64-bit value as protobufjs holds it (Long, number or string). */
export function longToDecimal(value: unknown, unsigned: boolean): string {
  if (typeof value === "object" && value !== null) {
    const long = value as LongLike;
    const { low, high } = long;
    if (high === 0 && (unsigned || low >= 0)) return String(low >>> 0);
    if (high === -1 && low < 0 && !unsigned) return String(low);
    if (long.unsigned === unsigned) return long.toString();
    // A Long of the other signedness: reinterpret the same 64 bits.
    const bits = (BigInt(high >>> 0) << 32n) | BigInt(low >>> 0);
    return (unsigned ? bits : BigInt.asIntN(64, bits)).toString();
  }
  if (typeof value === "number") return String(value);
  return String(value ?? "0");
}

/** Whether a 64-bit value is zero (the implicit-presence default). */
export function isZeroLong(value: unknown): boolean {
  if (typeof value === "object" && value !== null) {
    const long = value as LongLike;
    return long.low === 0 && long.high === 0;
  }
  return value === 0 || value === "0" || value == null;
}

/** A double for JSON: NaN and the infinities as strings, -0 kept. */
export function formatDouble(value: number): string {
  if (Number.isFinite(value)) return value === 0 && 1 / value < 0 ? "-0" : String(value);
  return Number.isNaN(value) ? '"NaN"' : value > 0 ? '"Infinity"' : '"-Infinity"';
}

/** A float32 for JSON: the shortest decimal that reads back as the same float32 (0.1f -> 0.1). */
export function formatFloat(value: number): string {
  if (!Number.isFinite(value) || (Number.isInteger(value) && Math.abs(value) < 16777216)) {
    return formatDouble(value);
  }
  for (let precision = 1; precision < 10; precision++) {
    const shorter = shortestAt(value, precision);
    if (shorter !== undefined) return String(shorter);
  }
  return String(value);
}

/**
 * The `precision`-digit decimal closest to `value` that reads back as the same
 * float32, if any. Not only the nearest one: at a power of two the float32's
 * rounding interval is lopsided, and a neighbour reads back where it does not
 * (2^-96 is 1.2621775e-29, not 1.26217745e-29).
 */
function shortestAt(value: number, precision: number): number | undefined {
  const [mantissa = "", exponent = "0"] = value.toExponential(precision - 1).split("e");
  const digits = BigInt(mantissa.replace(".", ""));
  const scale = Number(exponent) - (precision - 1);
  let best: number | undefined;
  for (const candidate of [digits, digits - 1n, digits + 1n]) {
    const decimal = Number(`${candidate}e${scale}`);
    if (Math.fround(decimal) !== value) continue;
    if (best === undefined || Math.abs(decimal - value) < Math.abs(best - value)) best = decimal;
  }
  return best;
}

/** A 64-bit value known to be in the safe range (Timestamp/Duration seconds) as a number. */
export function longToNumber(value: unknown): number {
  if (typeof value === "object" && value !== null) {
    const long = value as LongLike;
    return long.high * 4294967296 + (long.low >>> 0);
  }
  return Number(value ?? 0);
}
