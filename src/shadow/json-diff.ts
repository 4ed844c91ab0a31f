/**
 * A field-level diff of two JSON values (as parseJsonBody reads them), the
 * primary's answer taken as the reference: `missing` is in the primary but not
 * in the mirror, `extra` the other way round. Bounded, since it is kept in
 * memory and shown in the admin API: at most `limit` diffs (then `truncated`),
 * each value cut to 200 characters, each key in a path to 64 and each path to
 * 300 (its start and its end kept): a body's keys are as long as its sender
 * likes, and one long key repeats in the path of every field under it.
 */
import { isLosslessNumber, stringify } from "lossless-json";
import { isJsonObject } from "../codec/fields.js";
import { IGNORED } from "./ignore.js";

export interface FieldDiff {
  /**
   * JSON path, e.g. `$.user.email`, `$.tags[2]`, `$["odd key"]`; or `$status`,
   * `$body`. A key longer than 64 characters is cut (`$["kkk…"]`), a path
   * longer than 300 loses its middle (`…`).
   */
  readonly path: string;
  readonly kind: "changed" | "missing" | "extra";
  /**
   * Strings, numbers, booleans and null as they are; objects, arrays and
   * numbers past 2^53 as their JSON text. Strings longer than 200 characters are cut.
   */
  readonly primary?: unknown;
  readonly mirror?: unknown;
  /** Set when `primary` / `mirror` is JSON text (object, array, number past 2^53), not a string. */
  readonly primaryIsJson?: true;
  readonly mirrorIsJson?: true;
}

export interface DiffResult {
  readonly diffs: FieldDiff[];
  /** More differences were found than were kept. */
  readonly truncated: boolean;
}

export const MAX_DIFFS = 20;
const MAX_VALUE_CHARS = 200;
const MAX_KEY_CHARS = 64;
export const MAX_PATH_CHARS = 300;
/** Keys that can be copied into `compare.ignore` as `.name` steps. */
const PLAIN_KEY = /^[A-Za-z0-9_-]+$/;

export function diffJson(primary: unknown, mirror: unknown, limit = MAX_DIFFS): DiffResult {
  const out = { diffs: [] as FieldDiff[], truncated: false, limit };
  walk(primary, mirror, "$", out);
  return { diffs: out.diffs, truncated: out.truncated };
}

type Collector = { diffs: FieldDiff[]; truncated: boolean; limit: number };

function walk(a: unknown, b: unknown, path: string, out: Collector): void {
  if (out.truncated || a === IGNORED || b === IGNORED) return;
  if (Array.isArray(a) && Array.isArray(b)) {
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
      const at = `${path}[${i}]`;
      if (i >= b.length) add(out, at, "missing", a[i], undefined);
      else if (i >= a.length) add(out, at, "extra", undefined, b[i]);
      else walk(a[i], b[i], at, out);
    }
  } else if (isJsonObject(a) && isJsonObject(b)) {
    for (const key of Object.keys(a)) {
      if (Object.hasOwn(b, key)) walk(a[key], b[key], childPath(path, key), out);
      else add(out, childPath(path, key), "missing", a[key], undefined);
    }
    for (const key of Object.keys(b)) {
      if (!Object.hasOwn(a, key)) add(out, childPath(path, key), "extra", undefined, b[key]);
    }
  } else if (!sameScalar(a, b)) {
    add(out, path, "changed", a, b);
  }
}

/** Numbers compare by their decimal text, so an exact LosslessNumber never equals a rounded number. */
function sameScalar(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  const numeric = (v: unknown) => typeof v === "number" || isLosslessNumber(v);
  return numeric(a) && numeric(b) && String(a) === String(b);
}

/** `path` and `key` joined as FieldDiff paths have them. */
export function childPath(path: string, key: string): string {
  if (key.length > MAX_KEY_CHARS) {
    return `${path}[${JSON.stringify(`${key.slice(0, MAX_KEY_CHARS)}…`)}]`;
  }
  return PLAIN_KEY.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

function add(out: Collector, path: string, kind: FieldDiff["kind"], a: unknown, b: unknown): void {
  if (out.diffs.length >= out.limit) {
    out.truncated = true;
    return;
  }
  out.diffs.push(fieldDiff(path, a, b, kind));
}

/** One diff, its values shown as FieldDiff says. */
export function fieldDiff(
  path: string,
  a: unknown,
  b: unknown,
  kind: FieldDiff["kind"] = "changed",
): FieldDiff {
  const diff: { -readonly [K in keyof FieldDiff]: FieldDiff[K] } = { path: cutPath(path), kind };
  if (kind !== "extra") {
    diff.primary = preview(a);
    if (isJsonText(a)) diff.primaryIsJson = true;
  }
  if (kind !== "missing") {
    diff.mirror = preview(b);
    if (isJsonText(b)) diff.mirrorIsJson = true;
  }
  return diff;
}

/** Whether `preview` shows `value` as its JSON text. */
function isJsonText(value: unknown): boolean {
  return typeof value === "object" && value !== null;
}

/** A value as shown in a diff; see FieldDiff. */
export function preview(value: unknown): unknown {
  if (typeof value === "string") return cut(value);
  if (value === null || typeof value === "number" || typeof value === "boolean") return value;
  const text = stringify(value, (_key, v) => (v === IGNORED ? "<ignored>" : v)) ?? "null";
  return cut(text);
}

/**
 * A path cut to MAX_PATH_CHARS, its middle left out: deep nesting makes a long
 * path even of short keys, and its end names the field.
 */
export function cutPath(path: string): string {
  if (path.length <= MAX_PATH_CHARS) return path;
  const half = (MAX_PATH_CHARS - 1) / 2;
  return `${path.slice(0, Math.floor(half))}…${path.slice(-Math.ceil(half))}`;
}

function cut(text: string): string {
  return text.length <= MAX_VALUE_CHARS ? text : `${text.slice(0, MAX_VALUE_CHARS)}…`;
}
