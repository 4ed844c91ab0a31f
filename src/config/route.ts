/**
 * One route's keys, checked on their own; checks across routes (duplicates) and
 * against the protos run later on the drafts this returns.
 */
import type { Tunables } from "./defaults.js";
import { readTunables } from "./defaults.js";
import type { Field } from "./field.js";
import { type LegacyUpstreams, readRouteLegacy } from "./legacy.js";
import { checkKeys, readBool, readEnum, readString, required } from "./read.js";
import { readCompare, readCutover, readHeaders, readRateLimit } from "./route-options.js";
import { parsePath, subjectProblems } from "./route-paths.js";
import { ROUTE_KEYS } from "./schema.js";
import { HTTP_METHODS, type HttpMethod, type RouteConfig } from "./types.js";

/** A route as read so far: a key is undefined when it was missing or invalid (and reported). */
export type RouteDraft = { -readonly [K in keyof RouteConfig]?: RouteConfig[K] };

export interface ReadRoute {
  /** The route's map, labelled with its name, for locating later problems. */
  readonly field: Field;
  readonly draft: RouteDraft;
}

export interface RouteContext {
  readonly legacy: LegacyUpstreams;
  readonly defaults: Tunables;
}

/** A route name is a NATS KV key (the live cutover) and a metrics label. */
const ROUTE_NAME = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;
/** Route label for requests that matched no route (bounded: never the raw path); no route's name. */
export const UNMATCHED_ROUTE = "_unmatched";
/** Methods whose repetition has the same effect (RFC 9110 9.2.2), so retries and shadows are safe. */
const IDEMPOTENT: readonly HttpMethod[] = ["GET", "HEAD", "PUT", "DELETE", "OPTIONS"];
/** RFC 9110 gives a body on these no meaning; proxies and caches may drop it. */
const NO_BODY: readonly HttpMethod[] = ["GET", "HEAD"];

export function readRoute(item: Field, ctx: RouteContext): ReadRoute {
  // Until the name is known to be valid, problems name the route by its index.
  const name = readName(item.inRoute(item.path).child("name"));
  const field = item.inRoute(name ?? item.path);
  if (!checkKeys(field, ROUTE_KEYS)) return { field, draft: {} };
  for (const key of ["name", "method", "path", "subject", "request", "response"]) {
    required(field.child(key));
  }
  const endpoint = readEndpoint(field);
  const draft: RouteDraft = { name, ...endpoint, ...readTypes(field, endpoint.method) };
  draft.legacy = readRouteLegacy(field.child("legacy"), ctx.legacy);
  // A legacy key that is present but wrong is reported once, not again as "no upstream".
  const hasLegacy = field.child("legacy").present;
  draft.mode = readEnum(field.child("mode"), ["request", "publish"] as const) ?? "request";
  draft.idempotent = readBool(field.child("idempotent")) ?? defaultIdempotent(draft.method);
  draft.shadowWrites = readBool(field.child("shadowWrites")) ?? false;
  draft.cutover = readCutover(field.child("cutover"), hasLegacy);
  Object.assign(draft, readTunables(field, ctx.defaults));
  draft.rateLimit = readRateLimit(field.child("rateLimit"));
  draft.compare = readCompare(field.child("compare"));
  draft.headers = readHeaders(field.child("headers"));
  checkTraffic(field, draft, hasLegacy);
  return { field, draft };
}

/** The finished route, keys in the documented order; only called when no problem was found. */
export function toRouteConfig(d: RouteDraft): RouteConfig {
  return {
    name: d.name!,
    method: d.method!,
    path: d.path!,
    pathParams: d.pathParams!,
    subject: d.subject!,
    request: d.request!,
    response: d.response!,
    error: d.error,
    body: d.body,
    legacy: d.legacy,
    cutover: d.cutover!,
    mode: d.mode!,
    idempotent: d.idempotent!,
    shadowWrites: d.shadowWrites!,
    timeoutMs: d.timeoutMs!,
    retry: d.retry!,
    json: d.json!,
    breaker: d.breaker!,
    bodyLimitBytes: d.bodyLimitBytes!,
    rateLimit: d.rateLimit,
    compare: d.compare!,
    headers: d.headers!,
  };
}

function readName(f: Field): string | undefined {
  const name = readString(f);
  if (name === UNMATCHED_ROUTE) {
    f.problem(`"${name}" is reserved: it labels the requests that match no route in the metrics`);
    return undefined;
  }
  if (name === undefined || ROUTE_NAME.test(name)) return name;
  f.problem(
    `"${name}" must be dot-separated words of letters, digits, "_" and "-" (it is a NATS KV key)`,
  );
  return undefined;
}

function readEndpoint(f: Field): RouteDraft {
  const method = readEnum(f.child("method"), HTTP_METHODS);
  const path = readString(f.child("path"));
  const parsed = path === undefined ? undefined : parsePath(path);
  if (parsed?.ok === false) f.child("path").problem(parsed.problem);
  const pathParams = parsed?.ok === true ? parsed.value : undefined;
  const subject = readString(f.child("subject"));
  if (subject !== undefined) {
    for (const problem of subjectProblems(subject, pathParams)) f.child("subject").problem(problem);
  }
  return { method, path: pathParams === undefined ? undefined : path, pathParams, subject };
}

function readTypes(f: Field, method: HttpMethod | undefined): RouteDraft {
  const body = readString(f.child("body"));
  if (body !== undefined && method !== undefined && NO_BODY.includes(method)) {
    f.child("body").problem(`a ${method} request has no body; bind fields from path and query`);
  }
  return {
    request: typeName(f.child("request")),
    response: typeName(f.child("response")),
    error: typeName(f.child("error")),
    body,
  };
}

/** Fully qualified type names are stored without protobuf's optional leading dot. */
function typeName(f: Field): string | undefined {
  return readString(f)?.replace(/^\./, "");
}

function defaultIdempotent(method: HttpMethod | undefined): boolean {
  return method !== undefined && IDEMPOTENT.includes(method);
}

/** The split and the shadow need somewhere to send traffic, and shadows must be safe. */
function checkTraffic(f: Field, draft: RouteDraft, hasLegacy: boolean): void {
  const cutover = draft.cutover;
  if (cutover === undefined) return;
  const at = (key: string) => f.child("cutover").child(key);
  if (!hasLegacy && cutover.nats < 100) {
    at("nats").problem(`is ${cutover.nats} but the route has no legacy upstream to serve the rest`);
  }
  if (!hasLegacy && f.child("cutover").child("plan").present) {
    at("plan").problem("needs a legacy upstream: without one NATS already serves everything");
  }
  if (!hasLegacy && cutover.shadow > 0) {
    at("shadow").problem("needs a legacy upstream to mirror to");
  }
  if (cutover.shadow > 0 && draft.idempotent === false && draft.shadowWrites !== true) {
    at("shadow").problem(
      `mirroring a non-idempotent route runs each write twice; set shadowWrites: true if that is safe`,
    );
  }
}
