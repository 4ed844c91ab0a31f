/**
 * W3C Trace Context (https://www.w3.org/TR/trace-context/): a request that came
 * with a valid `traceparent` keeps it, unchanged; one without (or with an
 * invalid one) gets a new trace started here, so NATS workers and legacy
 * upstreams always see the same valid `traceparent` for one request. No spans
 * are recorded here; when OpenTelemetry export is on (otel.ts), the gateway's
 * span rewrites the header to name itself as the parent before any of this runs.
 */
import { randomFillSync } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";

/** `version-traceid-parentid-flags`, lower-case hex; version ff is forbidden. */
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const ZERO_TRACE = "0".repeat(32);
const ZERO_SPAN = "0".repeat(16);

export interface TraceParent {
  readonly version: string;
  readonly traceId: string;
  readonly parentId: string;
  readonly flags: string;
}

/** The parsed header, or undefined when it is missing or not valid. */
export function parseTraceparent(value: string | string[] | undefined): TraceParent | undefined {
  if (typeof value !== "string") return undefined;
  const match = TRACEPARENT.exec(value.trim());
  if (match === null) return undefined;
  const [, version = "", traceId = "", parentId = "", flags = "", rest] = match;
  if (version === "ff" || traceId === ZERO_TRACE || parentId === ZERO_SPAN) return undefined;
  // Version 00 has exactly four fields; later versions may append more.
  if (version === "00" && rest !== undefined) return undefined;
  return { version, traceId, parentId, flags };
}

/**
 * Random bytes come from a pool refilled 256 traces at a time: one
 * randomBytes() call per request cost more than the rest of the trace handling.
 */
const TRACE_BYTES = 24;
const pool = Buffer.allocUnsafe(TRACE_BYTES * 256);
let poolOffset = pool.length;

/** A new trace: version 00, random 16-byte trace id and 8-byte span id, sampled. */
export function startTraceparent(): string {
  if (poolOffset + TRACE_BYTES > pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const start = poolOffset;
  poolOffset += TRACE_BYTES;
  let traceId = pool.toString("hex", start, start + 16);
  let spanId = pool.toString("hex", start + 16, start + TRACE_BYTES);
  // All-zero ids are invalid; with random bytes, only a broken RNG gets here.
  if (traceId === ZERO_TRACE) traceId = `${ZERO_TRACE.slice(1)}1`;
  if (spanId === ZERO_SPAN) spanId = `${ZERO_SPAN.slice(1)}1`;
  return `00-${traceId}-${spanId}-01`;
}

/** `00-traceid-spanid-flags` from ids already valid (an OpenTelemetry span's). */
export function formatTraceparent(traceId: string, spanId: string, traceFlags: number): string {
  return `00-${traceId}-${spanId}-${traceFlags & 1 ? "01" : "00"}`;
}

/**
 * Makes sure the request headers carry a valid `traceparent`, in place, so every
 * call made for the request (primary, fallback, mirror) carries the same trace.
 * A valid client header is left unchanged. A missing or invalid one is replaced
 * and any `tracestate` dropped: W3C Trace Context ties tracestate to the parent
 * it came with, so it must not ride along on a trace started here.
 */
export function ensureTraceparent(headers: IncomingHttpHeaders): string {
  const given = headers.traceparent;
  if (typeof given === "string" && parseTraceparent(given) !== undefined) return given;
  const started = startTraceparent();
  headers.traceparent = started;
  delete headers.tracestate;
  return started;
}

/** The trace id of a valid traceparent, for log lines; undefined otherwise. */
export function traceIdOf(traceparent: string | string[] | undefined): string | undefined {
  return parseTraceparent(traceparent)?.traceId;
}
