/** A route's smaller option maps: cutover (with sticky), rateLimit, compare, headers. */
import type { Field } from "./field.js";
import { readPlan } from "./plan.js";
import { checkKeys, readDuration, readList, readNumber, readPercent, readString } from "./read.js";
import { COMPARE_KEYS, CUTOVER_KEYS, RATE_LIMIT_KEYS } from "./schema.js";
import type { CutoverOptions, RateLimitOptions, StickyKey } from "./types.js";

/** RFC 9110 token: what a header (or cookie) name may be made of. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** `$.a.b`, `$.items[0].id`, `$.items[*].updatedAt`, `$.*.etag`. */
const JSON_PATH = /^\$(\.(\*|[A-Za-z0-9_-]+)|\[(\*|\d+)\])+$/;
/** The default window of @fastify/rate-limit. */
const DEFAULT_RATE_WINDOW_MS = 60_000;

/**
 * Starting split. Without a legacy upstream NATS serves everything (100); with one,
 * a route starts on legacy (0) until someone raises it.
 */
export function readCutover(f: Field, hasLegacy: boolean): CutoverOptions {
  const defaults: CutoverOptions = {
    nats: hasLegacy ? 0 : 100,
    shadow: 0,
    sticky: { kind: "random" },
  };
  if (!checkKeys(f, CUTOVER_KEYS)) return defaults;
  const options: CutoverOptions = {
    nats: readPercent(f.child("nats")) ?? defaults.nats,
    shadow: readPercent(f.child("shadow")) ?? defaults.shadow,
    sticky: readSticky(f.child("sticky")) ?? defaults.sticky,
  };
  const plan = readPlan(f.child("plan"));
  return plan === undefined ? options : { ...options, plan };
}

function readSticky(f: Field): StickyKey | undefined {
  const text = readString(f);
  if (text === undefined) return undefined;
  if (text === "ip") return { kind: "ip" };
  const colon = text.indexOf(":");
  const kind = text.slice(0, colon);
  const name = text.slice(colon + 1);
  if (kind === "header" && TOKEN.test(name)) return { kind, name: name.toLowerCase() };
  if (kind === "cookie" && TOKEN.test(name)) return { kind, name };
  if (kind === "query" && name !== "") return { kind, name };
  f.problem(`"${text}" must be header:NAME, cookie:NAME, query:NAME or ip`);
  return undefined;
}

export function readRateLimit(f: Field): RateLimitOptions | undefined {
  if (!checkKeys(f, RATE_LIMIT_KEYS)) return undefined;
  const max = f.child("max");
  if (!max.present) max.problem("is required: the number of requests allowed per window");
  return {
    max: readNumber(max, { min: 1, integer: true }) ?? 1,
    perMs: readDuration(f.child("per"), true) ?? DEFAULT_RATE_WINDOW_MS,
    key: readRateKey(f.child("key")) ?? "ip",
  };
}

function readRateKey(f: Field): string | undefined {
  const key = readString(f);
  if (key === undefined || key === "ip") return key;
  const header = /^header:(.+)$/.exec(key)?.[1];
  if (header !== undefined && TOKEN.test(header)) return `header:${header.toLowerCase()}`;
  f.problem(`"${key}" must be ip or header:NAME`);
  return undefined;
}

export function readCompare(f: Field): { ignore: string[] } {
  if (!checkKeys(f, COMPARE_KEYS)) return { ignore: [] };
  const ignore = readList(f.child("ignore"), (item) => {
    const path = readString(item);
    if (path === undefined || JSON_PATH.test(path)) return path;
    item.problem(
      `"${path}" must be a JSON path such as $.updatedAt, $.items[0].id or $.items[*].etag`,
    );
    return undefined;
  });
  return { ignore: ignore ?? [] };
}

/**
 * Headers the gateway writes itself on every NATS request (backends/nats/headers.ts:
 * Turnout-Route, Turnout-Shadow, X-Request-Id, traceparent, tracestate). Passed
 * on from the client too, a worker would see two request ids or trace contexts,
 * one of them chosen by the client.
 */
const GATEWAY_HEADERS = ["x-request-id", "traceparent", "tracestate"];

/**
 * Headers about the HTTP connection and the message's framing (RFC 9110 7.6.1
 * hop-by-hop headers, and Host / Content-Length, which describe this hop's
 * target and body, not the request a worker serves).
 */
const CONNECTION_HEADERS = [
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "te",
  "trailer",
  "upgrade",
  "host",
  "content-length",
];

/** Lower-cased, without duplicates; the gateway's own headers, `nats-*` and connection headers are refused. */
export function readHeaders(f: Field): string[] {
  const names = readList(f, (item) => {
    const name = readString(item)?.toLowerCase();
    if (name === undefined) return undefined;
    const problem = headerProblem(name);
    if (problem === undefined) return name;
    item.problem(problem);
    return undefined;
  });
  return [...new Set(names ?? [])];
}

function headerProblem(name: string): string | undefined {
  if (!TOKEN.test(name)) return `"${name}" is not a valid HTTP header name`;
  if (name.startsWith("turnout-")) {
    return `"${name}" is set by the gateway and is never taken from the client`;
  }
  if (GATEWAY_HEADERS.includes(name)) {
    return `"${name}" is set by the gateway on every NATS request (its request id or trace context) and is never taken from the client`;
  }
  if (CONNECTION_HEADERS.includes(name)) {
    return `"${name}" describes the HTTP connection or the message's framing, not the request: it means nothing to a worker, which gets the body as one NATS message`;
  }
  // NATS and JetStream act on these (Nats-Msg-Id dedupes, Nats-Rollup purges a subject).
  if (name.startsWith("nats-")) {
    return `"${name}": Nats-* headers steer NATS and JetStream (Nats-Msg-Id, Nats-Rollup...) and are never taken from the client`;
  }
  return undefined;
}
