/**
 * How the codec reports bad values. Converters deep inside a message throw a
 * cheap `BadValue` that knows only the problem; each enclosing message, list
 * or map prepends its own path segment while the throw unwinds, so the happy
 * path builds no path strings at all. The entry points turn it into a
 * `TurnoutError` carrying the full JSON path (`$.user.tags[2]`).
 */
import { isLosslessNumber } from "lossless-json";
import { TurnoutError } from "../errors.js";

/** A value that does not fit its field; `path` grows as the throw unwinds. Internal. */
export class BadValue {
  /** Path below the level that caught it, e.g. `.user.tags[2]`; "" at the failing value. */
  path = "";
  constructor(readonly detail: string) {}
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The path segment of an object key: `.name`, or `["odd key"]` when not an identifier. */
export function keySegment(key: string): string {
  return IDENTIFIER.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
}

/** Prepends one segment to a BadValue and rethrows it; anything else is rethrown as is. */
export function rethrowUnder(error: unknown, segment: string): never {
  if (error instanceof BadValue) error.path = segment + error.path;
  throw error;
}

/** The 400 for a request body value, with the JSON path in both message and `field`. */
export function badFieldError(error: BadValue, root: string): TurnoutError {
  const field = root + error.path;
  return new TurnoutError("TURNOUT_ERR_BAD_FIELD", `field "${field}": ${error.detail}`, { field });
}

/** The 400 for a path or query parameter, named as the client wrote it. */
export function badParamError(name: string, detail: string): TurnoutError {
  return new TurnoutError("TURNOUT_ERR_BAD_PARAM", `parameter "${name}": ${detail}`, {
    field: name,
  });
}

/** The 502 for a worker reply that cannot be decoded or printed. */
export function badReplyError(typeName: string, detail: string, cause?: unknown): TurnoutError {
  return new TurnoutError(
    "TURNOUT_ERR_BAD_REPLY",
    `reply is not a valid ${typeName}: ${detail}`,
    cause === undefined ? {} : { cause },
  );
}

/**
 * Whether `error` is a message nested past what can be handled: protobufjs's
 * recursion limit (100 levels, protoc's) or, far deeper, the JS stack. The
 * codec reads JSON recursively without a limit of its own, which would cost a
 * counter on every message of every request to spare these rare ones.
 */
export function isTooDeep(error: unknown): boolean {
  return (
    error instanceof RangeError ||
    (error instanceof Error && error.message === "max depth exceeded")
  );
}

/** Raised while printing a reply (a Timestamp out of range, a wire type mismatch...). Internal. */
export class BadReply {
  constructor(readonly detail: string) {}
}

/** A short, safe rendering of a client value for an error message. */
export function show(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  switch (typeof value) {
    case "string":
      return JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}...` : value);
    case "number":
    case "boolean":
      return String(value);
    case "object":
      return isLosslessNumber(value) ? value.value : "an object";
    default:
      return typeof value;
  }
}
