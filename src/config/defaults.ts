/**
 * The settings `defaults:` holds and each route may override: timeout, retry, json,
 * breaker, bodyLimit. Merging is per key at every level: a route's
 * `retry: {attempts: 2}` keeps the backoff from `defaults`, and a route's
 * `json: {names: camel}` keeps the other json options from `defaults` (which were
 * themselves merged over canonical ProtoJSON). So one key can be changed without
 * restating the rest, and without any `json` anywhere a route prints canonical ProtoJSON.
 */
import type { Field } from "./field.js";
import { checkKeys, readBool, readDuration, readEnum, readNumber, readSize } from "./read.js";
import { BREAKER_KEYS, JSON_KEYS, RETRY_KEYS } from "./schema.js";
import { MAX_TIMER_MS, MAX_TIMER_TEXT } from "./timer-limit.js";
import {
  type BreakerOptions,
  CANONICAL_JSON,
  type JsonOptions,
  type RetryOptions,
} from "./types.js";
import { formatDuration } from "./units.js";

export interface Tunables {
  readonly timeoutMs: number;
  readonly retry: RetryOptions;
  readonly json: JsonOptions;
  readonly breaker: BreakerOptions;
  readonly bodyLimitBytes: number;
}

/** Used for whatever `defaults:` leaves out; the values of the documented example. */
export const BUILT_IN_TUNABLES: Tunables = {
  timeoutMs: 2000,
  retry: { attempts: 0, backoffMs: 50 },
  json: CANONICAL_JSON,
  breaker: { errorPercent: 50, volume: 20, resetAfterMs: 10_000 },
  bodyLimitBytes: 1024 * 1024,
};

/** Reads the tunable keys of `f` (defaults or a route), each merged over `base`. */
export function readTunables(f: Field, base: Tunables): Tunables {
  const timeoutMs = readDuration(f.child("timeout"), true);
  const tunables: Tunables = {
    timeoutMs: timeoutMs ?? base.timeoutMs,
    retry: readRetry(f.child("retry"), base.retry),
    json: readJson(f.child("json"), base.json),
    breaker: readBreaker(f.child("breaker"), base.breaker),
    bodyLimitBytes: readBodyLimit(f.child("bodyLimit")) ?? base.bodyLimitBytes,
  };
  // A timeout already refused is not reported again through its product.
  if (timeoutMs !== undefined || !f.child("timeout").present) checkOverallDeadline(f, tunables);
  return tunables;
}

/**
 * A body is held in memory whole and read as one string: past V8's longest
 * (about 512 MiB) every body over that size would be a 500, not a 413.
 */
const MAX_BODY_LIMIT_BYTES = 256 * 1024 * 1024;

function readBodyLimit(f: Field): number | undefined {
  const bytes = readSize(f);
  if (bytes === undefined || bytes <= MAX_BODY_LIMIT_BYTES) return bytes;
  f.problem(
    `must be at most 256MiB (a body is held in memory and read as one string), got ${f.describe()}`,
  );
  return undefined;
}

/**
 * A request's overall deadline, (1 + retry.attempts) x timeout (overallDeadlineMs
 * in backends/resilience/retry-policy.ts), is a timer too: the drain waits for
 * it and bounds every retry delay by it, so it must fit MAX_TIMER_MS like each
 * duration does. Reported where `f` sets one of the two; values `f` inherits
 * were checked where they are set.
 */
function checkOverallDeadline(f: Field, tunables: Tunables): void {
  const { timeoutMs, retry } = tunables;
  const deadlineMs = (1 + retry.attempts) * timeoutMs;
  if (deadlineMs <= MAX_TIMER_MS) return;
  const at = [f.child("timeout"), f.child("retry").child("attempts")].find((key) => key.present);
  at?.problem(
    `with timeout ${formatDuration(timeoutMs)} and retry.attempts ${retry.attempts}, a request's overall deadline ((1 + attempts) x timeout = ${formatDuration(deadlineMs)}) is past ${MAX_TIMER_TEXT}, the longest timer Node keeps; lower timeout or retry.attempts`,
  );
}

/**
 * At most 10 retries: each one stretches the request's deadline by another whole
 * timeout ((1 + attempts) x timeout) and sends another request to workers that are
 * already failing; a larger count turns a short outage into a retry storm and a
 * client left waiting for minutes.
 */
export const MAX_RETRY_ATTEMPTS = 10;

function readRetry(f: Field, base: RetryOptions): RetryOptions {
  if (!checkKeys(f, RETRY_KEYS)) return base;
  const attempts = readNumber(f.child("attempts"), {
    min: 0,
    max: MAX_RETRY_ATTEMPTS,
    maxReason: "each retry adds a whole timeout to the wait and load on failing workers",
    integer: true,
  });
  return {
    attempts: attempts ?? base.attempts,
    backoffMs: readDuration(f.child("backoff"), false) ?? base.backoffMs,
  };
}

function readJson(f: Field, base: JsonOptions): JsonOptions {
  if (!checkKeys(f, JSON_KEYS)) return base;
  return {
    names: readEnum(f.child("names"), ["proto", "camel"] as const) ?? base.names,
    int64: readEnum(f.child("int64"), ["string", "number"] as const) ?? base.int64,
    enums: readEnum(f.child("enums"), ["name", "number"] as const) ?? base.enums,
    emitDefaults: readBool(f.child("emitDefaults")) ?? base.emitDefaults,
  };
}

function readBreaker(f: Field, base: BreakerOptions): BreakerOptions {
  if (!checkKeys(f, BREAKER_KEYS)) return base;
  // opossum opens when the error rate is above errorPercent: no rate is above 100.
  const errorPercent = readNumber(f.child("errorPercent"), {
    above: 0,
    below: 100,
    belowReason: "the breaker opens when the error rate is above it, and no rate is above 100%",
  });
  return {
    errorPercent: errorPercent ?? base.errorPercent,
    volume: readNumber(f.child("volume"), { min: 1, integer: true }) ?? base.volume,
    resetAfterMs: readDuration(f.child("resetAfter"), true) ?? base.resetAfterMs,
  };
}
