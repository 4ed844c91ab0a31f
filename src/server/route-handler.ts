/**
 * One route's request, end to end: parse (the input) -> decide (which side
 * serves, whether to mirror) -> call (NATS pipeline or legacy forward, with
 * fallback) -> answer. Each backend call goes through the route's breaker for
 * that backend, and is retried per the route's policy (NATS retries live in
 * the pipeline, legacy ones here). The mirror, when chosen, goes through the
 * mirror breakers, never the primary's, and is never awaited by the client's
 * request: a NATS mirror starts once the legacy primary's answer is on its way
 * to the client (see serveLegacy), a legacy mirror once the NATS primary's
 * outcome is known (see mirrorNatsOutcome). Either way, a primary that fails
 * before answering is mirrored nowhere.
 */
import { PassThrough, pipeline, Readable } from "node:stream";
import { setImmediate as nextTurn } from "node:timers/promises";
import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from "fastify";
import type { LegacyAnswer, LegacyRequest } from "../backends/legacy/forward.js";
import { contentTypeKept, type HeaderMap } from "../backends/legacy/headers.js";
import type { LegacyUpstreams } from "../backends/legacy/upstreams.js";
import type { DeadLetterStore } from "../backends/nats/dead-letters.js";
import {
  type Breaker,
  type BreakerState,
  createBreaker,
  isServerError,
  NO_BREAKER,
} from "../backends/resilience/breaker.js";
import { compileRetry, type Retrying } from "../backends/resilience/retry.js";
import type { RouteConfig } from "../config/types.js";
import type { AdminToken } from "../control/admin-token.js";
import type { LiveCutover } from "../control/cutover-state.js";
import { TurnoutError } from "../errors.js";
import type { GatewayMetrics } from "../observability/metrics.js";
import { ensureTraceparent } from "../observability/trace.js";
import { compileBucketOf, decideSide, type Side, shouldShadow } from "../routing/split.js";
import { compileStickyKey } from "../routing/sticky.js";
import {
  answerOfFailure,
  type ComparedAnswer,
  type MirrorHandle,
  type Mirrors,
  type SkipReason,
} from "../shadow/mirror.js";
import type { Answer, RouteCall, RouteInput } from "./nats-pipeline.js";
import { pathOf } from "./request-path.js";

export interface RouteHandlerDeps {
  readonly route: RouteConfig;
  readonly natsCall: RouteCall;
  readonly legacy: LegacyUpstreams;
  readonly cutover: Readonly<LiveCutover>;
  /**
   * False until the live cutover state has loaded: until then `cutover` holds
   * routes.yaml's values, which the KV may have replaced.
   */
  readonly cutoverLoaded: () => boolean;
  readonly mirrors: Mirrors;
  readonly adminToken: AdminToken;
  readonly metrics: GatewayMetrics;
  /** Where requests that finally failed on NATS, and that legacy did not serve instead, are kept. */
  readonly deadLetters?: DeadLetterStore;
  /** Where the breakers' state changes are logged. */
  readonly log: FastifyBaseLogger;
  readonly isDraining: () => boolean;
  /** True (and recorded) when the client left before its answer: nothing is to be sent. */
  readonly clientGone: (req: FastifyRequest, reply: FastifyReply) => boolean;
  /** Records a streamed answer that ends cut short (Fastify records none then). */
  readonly watchStream: (req: FastifyRequest, reply: FastifyReply, body: Readable) => void;
}

/** The deps plus what the handler compiles for itself: one breaker per backend, the legacy retry. */
interface Compiled extends RouteHandlerDeps {
  readonly breakers: Readonly<Record<Side, Breaker>>;
  /** The route's retry policy for legacy forwards (NATS retries live in the pipeline). */
  readonly retryingLegacy: Retrying;
}

export type RouteHandler = (req: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply>;

/** NATS failures where no worker saw the request: legacy may serve it instead. */
const FALLBACK_REASONS: Readonly<Record<string, string>> = {
  TURNOUT_ERR_NO_RESPONDERS: "no_responders",
  TURNOUT_ERR_NOT_CONNECTED: "not_connected",
  TURNOUT_ERR_BREAKER_OPEN: "breaker_open",
};

/**
 * Served on routes.yaml's split, a request might go to the side the KV has
 * moved its user away from: a user flips sides for as long as this replica
 * starts (without JetStream quorum, indefinitely). Refused instead, so the
 * client retries on a replica that knows the split.
 */
function splitUnknown(routeName: string, reply: FastifyReply): TurnoutError {
  reply.header("retry-after", "1");
  return new TurnoutError(
    "TURNOUT_ERR_CUTOVER_UNAVAILABLE",
    `the live cutover state is not loaded yet, so this replica does not know ${routeName}'s split (routes.yaml's values may be outdated)`,
  );
}

/** `turnout_breaker_state` values. */
const STATE_VALUE: Readonly<Record<BreakerState, number>> = { closed: 0, halfOpen: 1, open: 2 };

export function compileRouteHandler(routeDeps: RouteHandlerDeps): RouteHandler {
  const deps: Compiled = {
    ...routeDeps,
    breakers: compileBreakers(routeDeps),
    retryingLegacy: compileLegacyRetry(routeDeps),
  };
  const { route, cutover } = deps;
  const bucketOf = compileBucketOf(route.name);
  const stickyKeyOf = compileStickyKey(route.cutover.sticky);
  const hasLegacy = route.legacy !== undefined;
  const mayMirror = hasLegacy && (route.idempotent || route.shadowWrites);

  const forced = (req: FastifyRequest): Side | undefined =>
    forcedSide(req, deps.adminToken, hasLegacy);

  return async (req, reply) => {
    reply.header("x-request-id", req.id);
    const input = routeInput(req);
    const forcedTo = forced(req);
    if (forcedTo === undefined && hasLegacy && !deps.cutoverLoaded()) {
      throw splitUnknown(route.name, reply);
    }
    const side =
      forcedTo ??
      (hasLegacy ? decideSide(bucketOf(stickyKeyOf(stickyFacts(req))), cutover.nats) : "nats");
    // A HEAD answer has no body to hold against the other side's.
    const mirrored =
      forcedTo === undefined &&
      mayMirror &&
      req.method !== "HEAD" &&
      cutover.shadow > 0 &&
      shouldShadow(cutover.shadow);

    if (side === "legacy") {
      const mirror = mirrored ? () => startMirror(deps, req, input, side) : undefined;
      return serveLegacy(deps, req, reply, mirror);
    }
    // A side forced by an operator is answered by that side: no fallback hides it.
    return serveNats(deps, req, reply, input, mirrored, forcedTo === undefined);
  };
}

/** The route as one attempt sees it: its timeout cut to what the deadline leaves. */
function withTimeout(route: RouteConfig, timeoutMs: number): RouteConfig {
  return timeoutMs === route.timeoutMs ? route : { ...route, timeoutMs };
}

function compileLegacyRetry({ route, metrics }: RouteHandlerDeps): Retrying {
  const policy = { ...route.retry, timeoutMs: route.timeoutMs, idempotent: route.idempotent };
  return compileRetry(policy, metrics.route(route.name).retryCounter("legacy"));
}

function compileBreakers({ route, metrics, log }: RouteHandlerDeps): Record<Side, Breaker> {
  const breaker = (backend: Side) => {
    let previous: BreakerState | undefined;
    return createBreaker(`${route.name}/${backend}`, route.breaker, (state) => {
      metrics.breakerState.set({ route: route.name, backend }, STATE_VALUE[state]);
      // The gauge is sampled at scrape time and misses a short opening; the log does not.
      if (previous !== undefined) logBreaker(log, route, backend, state);
      previous = state;
    });
  };
  return {
    nats: breaker("nats"),
    legacy: route.legacy === undefined ? NO_BREAKER : breaker("legacy"),
  };
}

function logBreaker(
  log: FastifyBaseLogger,
  route: RouteConfig,
  backend: Side,
  state: BreakerState,
) {
  const fields = { route: route.name, backend, breaker: state };
  if (state === "open") {
    const { errorPercent, volume, resetAfterMs } = route.breaker;
    log.warn(
      fields,
      `circuit breaker open: over ${errorPercent}% of at least ${volume} requests failed; requests to ${backend} are refused for ${resetAfterMs} ms`,
    );
  } else if (state === "halfOpen") {
    log.info(fields, "circuit breaker half-open: the next request probes the backend");
  } else {
    log.info(fields, "circuit breaker closed: the probe was answered");
  }
}

async function serveNats(
  deps: Compiled,
  req: FastifyRequest,
  reply: FastifyReply,
  input: RouteInput,
  mirrored: boolean,
  mayFallBack: boolean,
): Promise<FastifyReply> {
  req.backend = "nats";
  let answer: Answer;
  try {
    // Bound and encoded before the breaker: bad input is the client's 400,
    // open breaker or not, and never a dead letter.
    answer = await deps.breakers.nats.run(deps.natsCall(input), isServerError);
  } catch (error) {
    const reason = mayFallBack ? fallbackReason(deps.route, error) : undefined;
    if (mirrored) mirrorNatsOutcome(deps, req, input, comparedFailure(error, req.id, deps.route));
    if (reason === undefined) {
      deps.deadLetters?.record(deps.route, input, error);
      throw error;
    }
    return fallBack(deps, req, reply, input, error, reason);
  }
  if (!deps.clientGone(req, reply)) {
    closeIfDraining(deps, reply);
    sendAnswer(reply, answer);
  }
  // After the answer is written: the mirror's dispatch (about 110 µs) never
  // delays it, and it still sees the mirror pool as it is (a dispatch put off
  // to a later turn would let every request of this turn past the free-socket check).
  if (mirrored) mirrorNatsOutcome(deps, req, input, comparable(answer));
  return reply;
}

/** 204 and 205 carry no content (RFC 9110 sections 15.3.5, 15.3.6), whatever the reply held. */
function isContentless(status: number): boolean {
  return status === 204 || status === 205;
}

function sendAnswer(reply: FastifyReply, answer: Answer): void {
  if (isContentless(answer.status)) {
    reply.code(answer.status).removeHeader("content-length").send();
    return;
  }
  reply.code(answer.status).header("content-type", answer.contentType).send(answer.body);
}

/**
 * Legacy serves a request that NATS failed before any worker saw it. Counted
 * as a fallback when handed to legacy, whether legacy answers or not: the
 * count is of NATS failures by reason (the cutover plan counts each as a NATS
 * error, as the request is then recorded under legacy). Legacy answering,
 * whatever its status, served the request; when legacy fails too (refused,
 * timed out, reset: no answer at all), the client gets legacy's error and the
 * request is kept as a dead letter, as it would have been with no legacy upstream.
 */
async function fallBack(
  deps: Compiled,
  req: FastifyRequest,
  reply: FastifyReply,
  input: RouteInput,
  natsError: unknown,
  reason: string,
): Promise<FastifyReply> {
  deps.metrics.fallbacks.cell(deps.route.name, reason).inc();
  try {
    return await serveLegacy(deps, req, reply, undefined);
  } catch (legacyError) {
    deps.deadLetters?.record(deps.route, input, alsoFailedOnLegacy(natsError, legacyError));
    throw legacyError;
  }
}

/**
 * The NATS failure a dead letter records (its code decides whether it is
 * one), its message followed by the legacy failure that left it unserved.
 */
function alsoFailedOnLegacy(natsError: unknown, legacyError: unknown): unknown {
  if (!(natsError instanceof TurnoutError)) return natsError;
  const legacy =
    legacyError instanceof TurnoutError
      ? `${legacyError.code}: ${legacyError.message}`
      : String(legacyError);
  return new TurnoutError(
    natsError.code,
    `${natsError.message}; the fallback to legacy failed too (${legacy})`,
    { status: natsError.status, cause: natsError },
  );
}

/**
 * `mirrorOf`, when the request is mirrored, is called once legacy has
 * answered, and the NATS call it makes waits for the next turn: by then this
 * answer is written to the client, so the mirror's parse and encode
 * (milliseconds for a large body) never delay it.
 */
async function serveLegacy(
  deps: Compiled,
  req: FastifyRequest,
  reply: FastifyReply,
  mirrorOf: (() => MirrorHandle | undefined) | undefined,
): Promise<FastifyReply> {
  req.backend = "legacy";
  let answer: LegacyAnswer<Readable | Buffer>;
  try {
    // A client that goes away (reply.raw closes) cancels the forward and its retries.
    const options = { mode: "relay", client: reply.raw } as const;
    // Retried before anything reached the client: the request body is kept.
    const forward = (timeoutMs: number) =>
      deps.legacy.forward(withTimeout(deps.route, timeoutMs), legacyRequest(req), options);
    answer = await deps.breakers.legacy.run(() => deps.retryingLegacy(forward), isServerError);
  } catch (error) {
    if (mirrorOf !== undefined) deps.mirrors.skipped(deps.route.name, "primary_failed");
    throw error;
  }
  if (deps.clientGone(req, reply)) {
    if (!Buffer.isBuffer(answer.body)) answer.body.destroy();
    return reply;
  }
  // The gateway's request id wins over one the upstream sets: it names the request in every log.
  reply.code(answer.status).headers(answer.headers).header("x-request-id", req.id);
  closeIfDraining(deps, reply);
  const mirror = mirrorOf === undefined ? undefined : mirrorUnlessTooLarge(deps, answer, mirrorOf);
  const body = mirror === undefined ? answer.body : keepForComparison(answer, mirror, deps);
  const payload = payloadOf(body, answer.headers);
  if (payload instanceof Readable) deps.watchStream(req, reply, payload);
  return reply.send(payload);
}

/**
 * The body as Fastify sends it without changing a header: it labels a Buffer
 * `application/octet-stream` when its Content-Type is missing or one it cannot
 * parse (`json`, `*`, two header lines...), and sends a stream with the headers
 * as set. So an empty body goes as no payload, and one whose Content-Type
 * Fastify would replace (rare) as a stream, its Content-Length kept.
 */
function payloadOf(body: Readable | Buffer, headers: HeaderMap): Readable | Buffer | undefined {
  if (!Buffer.isBuffer(body)) return body;
  if (body.length === 0) return undefined;
  return contentTypeKept(headers["content-type"]) ? body : Readable.from([body]);
}

/**
 * The NATS mirror of a legacy-served request, unless legacy's answer is known
 * to be over the comparison cap already (a body read whole, or the
 * Content-Length a streamed one declares): the workers would run a mirror
 * whose result is only counted `body_too_large`. Counted so now instead.
 */
function mirrorUnlessTooLarge(
  deps: Compiled,
  answer: LegacyAnswer<Readable | Buffer>,
  mirrorOf: () => MirrorHandle | undefined,
): MirrorHandle | undefined {
  if (knownBytes(answer) <= deps.mirrors.maxBodyBytes) return mirrorOf();
  deps.mirrors.skipped(deps.route.name, "body_too_large");
  return undefined;
}

/** The answer's body length as known before it is read: 0 for a stream that declares none. */
function knownBytes(answer: LegacyAnswer<Readable | Buffer>): number {
  if (Buffer.isBuffer(answer.body)) return answer.body.length;
  const declared = answer.headers["content-length"];
  return typeof declared === "string" ? Number(declared) : 0;
}

/** The body to send, while the mirror gets the primary's answer to compare (up to the cap). */
function keepForComparison(
  answer: LegacyAnswer<Readable | Buffer>,
  mirror: MirrorHandle,
  deps: Compiled,
): Readable | Buffer {
  if (!Buffer.isBuffer(answer.body)) {
    return teeForComparison({ ...answer, body: answer.body }, mirror, deps.mirrors.maxBodyBytes);
  }
  // Within the cap: mirrorUnlessTooLarge started no mirror otherwise.
  mirror.comparePrimary(comparedLegacy(answer.status, answer.headers, answer.body));
  return answer.body;
}

/** The Content-Encoding goes along: the body is decoded for the comparison, off the request path. */
function comparedLegacy(
  status: number,
  headers: LegacyAnswer<Buffer>["headers"],
  body: Buffer,
): ComparedAnswer {
  const contentType = headers["content-type"];
  const encoding = headers["content-encoding"];
  return {
    status,
    body,
    contentType: typeof contentType === "string" ? contentType : undefined,
    contentEncoding: Array.isArray(encoding) ? encoding.join(", ") : encoding,
  };
}

/**
 * Pipes the legacy body to the client unchanged while keeping a copy (up to
 * the cap) for the comparison. Both consumers attach in this same tick, so no
 * chunk is missed; backpressure is the client's, as with a plain pipe. A
 * pipeline, not a pipe: an upstream failing mid-body destroys `out`, so the
 * client's connection is cut as for an unshadowed stream (a pipe left it open
 * for good, and the drain waiting), and a client leaving destroys the upstream
 * body (the `data` listener kept it flowing).
 */
function teeForComparison(
  answer: LegacyAnswer<Readable>,
  mirror: MirrorHandle,
  maxBytes: number,
): Readable {
  const chunks: Buffer[] = [];
  let size = 0;
  let overCap = false;
  const out = new PassThrough();
  answer.body.on("data", (chunk: Buffer) => {
    if (overCap) return;
    size += chunk.length;
    if (size <= maxBytes) return void chunks.push(chunk);
    // Known now, not at the end: a client reading slowly (or not at all)
    // would hold the mirror's in-flight slot for the whole download.
    overCap = true;
    chunks.length = 0;
    mirror.primaryTooLarge();
  });
  answer.body.once("end", () => {
    if (overCap) return;
    mirror.comparePrimary(
      comparedLegacy(answer.status, answer.headers, Buffer.concat(chunks, size)),
    );
  });
  // Either side failing or closing early: the mirror lets go of its in-flight slot.
  pipeline(answer.body, out, (error) => {
    if (error) mirror.primaryFailed();
  });
  return out;
}

function startMirror(
  deps: RouteHandlerDeps,
  req: FastifyRequest,
  input: RouteInput,
  primary: Side,
): MirrorHandle | undefined {
  const request = {
    requestId: req.id,
    method: req.method,
    path: pathOf(req.url),
    bodyBytes: input.body === undefined ? 0 : Buffer.byteLength(input.body),
  };
  const call =
    primary === "nats"
      ? () => mirrorLegacy(deps, req)
      : () => nextTurn().then(() => deps.natsCall(input, true)().then(comparable));
  return deps.mirrors.start(deps.route.name, primary, request, call);
}

/**
 * The legacy mirror of a NATS-served request starts once the NATS outcome is
 * known, not beside it: when NATS fails and legacy serves the fallback, a
 * mirror already sent would have run the request on legacy twice (a write,
 * with shadowWrites). `primary` is undefined when NATS gave no answer to compare.
 */
function mirrorNatsOutcome(
  deps: RouteHandlerDeps,
  req: FastifyRequest,
  input: RouteInput,
  primary: ComparedAnswer | undefined,
): void {
  if (primary === undefined) {
    deps.mirrors.skipped(deps.route.name, "primary_failed");
    return;
  }
  const skip = legacyMirrorSkip(deps, primary);
  if (skip === undefined) startMirror(deps, req, input, "nats")?.comparePrimary(primary);
  else deps.mirrors.skipped(deps.route.name, skip);
}

/** Why a legacy mirror of this NATS answer is not worth sending now, if it is not. */
function legacyMirrorSkip(deps: RouteHandlerDeps, primary: ComparedAnswer): SkipReason | undefined {
  // Not compared anyway: legacy would be asked for nothing.
  if (!deps.mirrors.fits(primary)) return "body_too_large";
  // It would only queue behind other mirrors, holding its in-flight slot, and time out.
  if (!deps.legacy.hasFreeMirrorSocket(deps.route)) return "in_flight_cap";
  return undefined;
}

/**
 * Through the mirror pool, so mirrors never hold the sockets clients need, and
 * asking for an uncompressed body: one encoded anyway is decoded to compare it.
 */
async function mirrorLegacy(deps: RouteHandlerDeps, req: FastifyRequest): Promise<ComparedAnswer> {
  const request = legacyRequest(req);
  const headers = { ...request.headers, "accept-encoding": "identity" };
  const answer = await deps.legacy.mirror(
    deps.route,
    { ...request, headers },
    { mode: "buffer", maxBodyBytes: deps.mirrors.maxBodyBytes },
  );
  return comparedLegacy(answer.status, answer.headers, answer.body);
}

/**
 * Checked when the answer is ready, not when the request came in: a request in
 * flight when the drain began must still tell its keep-alive client to let go.
 */
function closeIfDraining(deps: RouteHandlerDeps, reply: FastifyReply): void {
  if (deps.isDraining()) reply.header("connection", "close");
}

/**
 * A NATS-side failure compared as the answer the client gets: a worker's
 * error status, or the gateway refusing the request's input (a bad field, a
 * bad subject token), as a mirror's would be: those clients would regress
 * once moved to NATS. Not the gateway's own 5xx (no responders, a timeout:
 * failures, not answers), nor a refused Idempotency-Key reuse, which legacy
 * would run as a new write.
 */
function comparedFailure(
  error: unknown,
  requestId: string,
  route: RouteConfig,
): ComparedAnswer | undefined {
  if (error instanceof TurnoutError && error.code === "TURNOUT_ERR_IDEMPOTENCY_KEY_REUSED") {
    return undefined;
  }
  return answerOfFailure(error, requestId, route.name);
}

/** The answer as the client gets it (see sendAnswer), to compare. */
function comparable(answer: Answer): ComparedAnswer {
  if (isContentless(answer.status)) {
    return { status: answer.status, body: undefined, contentType: undefined };
  }
  return { status: answer.status, body: answer.body, contentType: answer.contentType };
}

function fallbackReason(route: RouteConfig, error: unknown): string | undefined {
  if (route.legacy === undefined || !(error instanceof TurnoutError)) return undefined;
  if (error.code === "TURNOUT_ERR_TIMEOUT") return route.idempotent ? "timeout" : undefined;
  return FALLBACK_REASONS[error.code];
}

/**
 * `Turnout-Backend: nats|legacy` forces a side only with a valid
 * `Turnout-Token` (the admin token); without it the header is ignored.
 */
function forcedSide(req: FastifyRequest, token: AdminToken, hasLegacy: boolean): Side | undefined {
  const wanted = req.headers["turnout-backend"];
  if (wanted !== "nats" && wanted !== "legacy") return undefined;
  const presented = req.headers["turnout-token"];
  if (token.check(typeof presented === "string" ? presented : undefined) !== "ok") return undefined;
  if (wanted === "legacy" && !hasLegacy) {
    throw new TurnoutError("TURNOUT_ERR_BAD_PARAM", "this route has no legacy upstream to force", {
      field: "turnout-backend",
    });
  }
  return wanted;
}

function routeInput(req: FastifyRequest): RouteInput {
  // Continued or started here, in req.headers: NATS, legacy and a mirror share
  // it, and the request id (a client's unsafe one is replaced) likewise.
  ensureTraceparent(req.headers);
  req.headers["x-request-id"] = req.id;
  return {
    requestId: req.id,
    params: req.params as Record<string, string>,
    query: req.query as Record<string, string | string[]>,
    body: typeof req.body === "string" ? req.body : undefined,
    headers: req.headers,
  };
}

function stickyFacts(req: FastifyRequest) {
  return {
    headers: req.headers,
    query: req.query as Record<string, string | string[]>,
    ip: req.ip,
  };
}

/** Only after routeInput(req), which put the traceparent the legacy side gets in req.headers. */
function legacyRequest(req: FastifyRequest): LegacyRequest {
  return {
    method: req.method,
    url: req.url,
    body: typeof req.body === "string" ? req.body : undefined,
    headers: req.headers,
    remoteAddress: req.socket.remoteAddress,
    protocol: req.protocol,
    host: req.host,
  };
}
