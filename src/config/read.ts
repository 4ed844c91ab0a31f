/**
 * Typed readers over a Field. Each returns the value, or undefined after reporting
 * why the value is unusable, so a caller can go on checking the rest of the file.
 * An absent key returns undefined silently: defaults are the caller's business.
 */
import { decimalPlaces } from "./decimal.js";
import type { Field } from "./field.js";
import { didYouMean } from "./suggest.js";
import { MAX_TIMER_MS, MAX_TIMER_TEXT } from "./timer-limit.js";
import { parseDuration, parseSize } from "./units.js";

/** Reports a present non-map, every repeated key and every unknown key; true when `f` is a map. */
export function checkKeys(f: Field, allowed: readonly string[]): boolean {
  if (!f.present) return false;
  if (!f.isMap) {
    f.problem(`must be a map, got ${f.describe()}`);
    return false;
  }
  checkUniqueKeys(f);
  for (const { key, keyOffset, field } of f.entries()) {
    if (allowed.includes(key)) continue;
    // A likely typo gets its fix; otherwise the whole list, to show what is possible.
    let hint = didYouMean(key, allowed) || `; known keys: ${allowed.join(", ")}`;
    if (key === "<<") hint = ": YAML merge keys are not supported; use an anchor per value";
    f.ctx.problems.add(keyOffset, field.path, `unknown key "${key}"${hint}`, f.route);
  }
  return true;
}

/**
 * Reports keys a map gives twice. The parser refuses `a: 1` twice, but 1 and
 * "1" (or true and "true") are two different YAML keys with the same text:
 * every reader looks keys up by their text and would see only the first.
 */
export function checkUniqueKeys(f: Field): void {
  const firstLine = new Map<string, number>();
  for (const { key, keyOffset, field } of f.entries()) {
    const line = firstLine.get(key);
    if (line === undefined) {
      firstLine.set(key, f.ctx.problems.lineOf(keyOffset));
      continue;
    }
    const message = `key "${key}" is given twice (also at line ${line}): YAML tells 1 from "1", but both name the same entry and only the first would be read`;
    f.ctx.problems.add(keyOffset, field.path, message, f.route);
  }
}

/** Reports a missing required key; true when present. */
export function required(f: Field): boolean {
  if (!f.present) f.problem("is required");
  return f.present;
}

export function readString(f: Field): string | undefined {
  if (!f.present) return undefined;
  if (typeof f.scalar === "string" && f.scalar.trim() !== "") return f.scalar;
  f.problem(`must be a non-empty string, got ${f.describe()}`);
  return undefined;
}

export function readBool(f: Field): boolean | undefined {
  if (!f.present) return undefined;
  if (typeof f.scalar === "boolean") return f.scalar;
  f.problem(`must be true or false, got ${f.describe()}`);
  return undefined;
}

export interface NumberRange {
  readonly min?: number;
  /** Values must be greater than this (timeouts: > 0). */
  readonly above?: number;
  readonly max?: number;
  /** Why `max` is the limit, shown with it when it is passed. */
  readonly maxReason?: string;
  /** Values must be less than this (a threshold nothing can pass). */
  readonly below?: number;
  /** Why `below` is the limit, shown with it when it is reached. */
  readonly belowReason?: string;
  /** A whole number, at most Number.MAX_SAFE_INTEGER unless `max` is lower. */
  readonly integer?: boolean;
}

export function readNumber(f: Field, range: NumberRange): number | undefined {
  if (!f.present) return undefined;
  const value = f.scalar;
  if (typeof value !== "number" || !Number.isFinite(value)) {
    f.problem(`must be a number, got ${f.describe()}`);
    return undefined;
  }
  const wrong = rangeProblem(value, decimalPlaces(f.numberText ?? ""), range);
  if (wrong === undefined) return value;
  f.problem(`${wrong}, got ${f.describe()}`);
  return undefined;
}

/** `decimals`: of the number as written, as its double may have rounded them away. */
function rangeProblem(value: number, decimals: number, range: NumberRange): string | undefined {
  if (range.integer === true && decimals > 0) return "must be a whole number";
  if (range.min !== undefined && value < range.min) return `must be at least ${range.min}`;
  if (range.above !== undefined && value <= range.above) return `must be more than ${range.above}`;
  if (range.max !== undefined && value > range.max) {
    const why = range.maxReason === undefined ? "" : ` (${range.maxReason})`;
    return `must be at most ${range.max}${why}`;
  }
  if (range.below !== undefined && value >= range.below) {
    const why = range.belowReason === undefined ? "" : ` (${range.belowReason})`;
    return `must be below ${range.below}${why}`;
  }
  // Past 2^53 whole numbers are no longer exact (2^53 + 1 reads as 2^53) and counters
  // compared with them stop adding up: too large to mean anything.
  if (range.integer === true && !Number.isSafeInteger(value)) {
    return `is too large: at most ${Number.MAX_SAFE_INTEGER}`;
  }
  return undefined;
}

/**
 * Whether `value` is written with at most two decimals: exactly the double
 * nearest to some n / 100. A tolerance would let `1e-9` pass (and be read as 0).
 */
export function isHundredths(value: number): boolean {
  return Math.round(value * 100) / 100 === value;
}

/**
 * A percentage 0-100 with at most two decimals (the split works in 1/100ths of a
 * percent), counted as written: 33.330000000000001 reads as the double 33.33.
 */
export function readPercent(f: Field): number | undefined {
  const value = readNumber(f, { min: 0, max: 100 });
  if (value === undefined) return undefined;
  if (decimalPlaces(f.numberText ?? "") <= 2) return value;
  f.problem(`must have at most two decimals, got ${f.describe()}`);
  return undefined;
}

export function readEnum<T extends string>(f: Field, values: readonly T[]): T | undefined {
  if (!f.present) return undefined;
  const value = f.scalar;
  if (typeof value === "string" && (values as readonly string[]).includes(value)) return value as T;
  const hint = typeof value === "string" ? didYouMean(value, values) : "";
  f.problem(`must be one of ${values.join(", ")}, got ${f.describe()}${hint}`);
  return undefined;
}

/** Milliseconds; `positive` refuses 0 (a timeout of 0 would fail every request). */
export function readDuration(f: Field, positive: boolean): number | undefined {
  if (!f.present) return undefined;
  try {
    const ms = parseDuration(f.scalar);
    if (ms > MAX_TIMER_MS) {
      f.problem(
        `must be at most ${MAX_TIMER_TEXT} (the longest timer Node keeps), got ${f.describe()}`,
      );
      return undefined;
    }
    if (!positive || ms > 0) return ms;
    f.problem(`must be more than 0, got ${f.describe()}`);
  } catch (error) {
    f.problem(`${(error as Error).message}, got ${f.describe()}`);
  }
  return undefined;
}

export function readSize(f: Field): number | undefined {
  if (!f.present) return undefined;
  try {
    // A bare number is checked as written: 1048576.00000000001 reads as the double 1048576.
    if (decimalPlaces(f.numberText ?? "") > 0) throw new Error("must be a whole number of bytes");
    const bytes = parseSize(f.scalar);
    if (bytes > 0) return bytes;
    f.problem(`must be more than 0 bytes, got ${f.describe()}`);
  } catch (error) {
    f.problem(`${(error as Error).message}, got ${f.describe()}`);
  }
  return undefined;
}

/** A list whose items each pass `item`; undefined when the list itself is unusable. */
export function readList<T>(f: Field, item: (f: Field) => T | undefined): T[] | undefined {
  if (!f.present) return undefined;
  if (!f.isList) {
    f.problem(`must be a list, got ${f.describe()}`);
    return undefined;
  }
  const values: T[] = [];
  for (const element of f.items()) {
    const value = item(element);
    if (value !== undefined) values.push(value);
  }
  return values;
}
