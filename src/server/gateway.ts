/**
 * Builds the public Fastify server from a validated route table, without
 * listening (tests `inject()` or listen on port 0). Each route's pipeline is
 * compiled here once; the handler only moves data through it.
 */
import { randomUUID } from "node:crypto";
import { type ServerResponse, STATUS_CODES } from "node:http";
import type { Socket } from "node:net";
import { performance } from "node:perf_hooks";
import type { Readable } from "node:stream";
import Fastify, {
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
  type onRequestHookHandler,
} from "fastify";
import type protobuf from "protobufjs";
import type { LegacyUpstreams } from "../backends/legacy/upstreams.js";
import type { DeadLetterStore } from "../backends/nats/dead-letters.js";
import type { Requester } from "../backends/nats/link.js";
import { parseQueryString } from "../codec/index.js";
import { charsetRefusal, jsonText } from "../codec/json-text.js";
import type { GatewayConfig, RouteConfig } from "../config/types.js";
import type { AdminToken } from "../control/admin-token.js";
import type { CutoverState } from "../control/cutover-state.js";
import { type ErrorCode, TurnoutError } from "../errors.js";
import { type Backend, type GatewayMetrics, UNMATCHED_ROUTE } from "../observability/metrics.js";
import type { RequestSpans } from "../observability/otel.js";
import { traceIdOf } from "../observability/trace.js";
import { codingsOf, type DecodeFailure, undoCodings } from "../shadow/content-coding.js";
import type { Mirrors } from "../shadow/mirror.js";
import { type ListenerOptions, listenerServerOptions } from "./listener-options.js";
import { AllowedMethods, type RefusedParam } from "./method-not-allowed.js";
import { compileNatsPipeline } from "./nats-pipeline.js";
import { isInternal, PROBLEM_CONTENT_TYPE, toProblem } from "./problem.js";
import { compilePublishPipeline } from "./publish-pipeline.js";
import { rateLimitRouteOptions } from "./rate-limit.js";
import { requestIdOf } from "./request-id.js";
import { pathOf } from "./request-path.js";
import { compileRouteHandler, type RouteHandler } from "./route-handler.js";

export interface GatewayDeps {
  readonly config: GatewayConfig;
  readonly root: protobuf.Root;
  readonly requester: Requester;
  readonly legacy: LegacyUpstreams;
  readonly cutover: CutoverState;
  /**
   * False while the live cutover state is loading: routes with two sides are
   * then refused (503), not split on routes.yaml's values. Without it, the
   * values in `cutover` are taken as final.
   */
  readonly cutoverLoaded?: () => boolean;
  readonly mirrors: Mirrors;
  readonly adminToken: AdminToken;
  readonly metrics: GatewayMetrics;
  readonly deadLetters?: DeadLetterStore;
  /**
   * True once a graceful drain began: answers then carry `Connection: close`, so
   * keep-alive clients let go and the drain doesn't wait for their idle sockets.
   */
  readonly isDraining?: () => boolean;
  /** HTTPS and slow-client limits, shared with the admin listener. */
  readonly listener?: ListenerOptions;
  /** Fastify/pino logger options; false for none (tests, benchmarks). */
  readonly logger?: boolean | { level: string };
  /** OpenTelemetry spans, when on; undefined (off) adds no hook at all. */
  readonly spans?: RequestSpans;
  /**
   * Proxies whose X-Forwarded-For/-Proto/-Host are believed: then `ip` keys
   * (rate limits, sticky splits) and the X-Forwarded-* sent to legacy name the
   * client, not the load balancer. Off by default: a client could claim any address.
   */
  readonly trustProxy?: TrustProxy;
}

/** Every hop (`true`), a number of hops, or the proxies' addresses and CIDRs. */
export type TrustProxy = true | number | string[];

declare module "fastify" {
  interface FastifyRequest {
    /** Which side answered: set by the pipeline, read by the metrics hook. */
    backend: Backend;
    /** Counted and logged already: an answer cut short may be seen twice. */
    recorded: boolean;
  }
  interface FastifyContextConfig {
    routeName?: string;
  }
}

/** Failures that a backend caused after it was called; every other problem is the gateway's own answer. */
const BACKEND_FAULTS = new Set([
  "TURNOUT_ERR_TIMEOUT",
  "TURNOUT_ERR_BAD_REPLY",
  "TURNOUT_ERR_WORKER",
  "TURNOUT_ERR_UPSTREAM_RESET",
  "TURNOUT_ERR_UPSTREAM_TIMEOUT",
  "TURNOUT_ERR_UPSTREAM_BAD",
  "TURNOUT_ERR_UPSTREAM_TOO_LARGE",
  "TURNOUT_ERR_UPSTREAM_FAILED",
]);

/** Largest accepted header section and URL, beyond Node's defaults' abuse potential. */
const MAX_HEADER_BYTES = 16 * 1024;

/** The router refuses a longer path param (decoded) before any route is chosen. */
const MAX_PARAM_LENGTH = 256;

export function buildGateway(deps: GatewayDeps): FastifyInstance {
  const isDraining = deps.isDraining ?? (() => false);
  const recorder = new RequestRecorder(deps.metrics, deps.spans);
  const paths = new AllowedMethods(deps.config.routes);
  const app = createServer(deps, recorder, paths);
  app.decorateRequest("backend", "gateway");
  app.decorateRequest("recorded", false);
  // First hook of all when on: the span sets the traceparent every later step passes on.
  deps.spans?.register(app, deps.config.routes);
  acceptJsonOnly(app);
  observeEachRequest(app, recorder);
  answerProblems(app, paths, isDraining, recorder);
  for (const route of deps.config.routes) {
    registerRoute(app, route, compileHandler(app, route, deps, isDraining, recorder), deps.metrics);
  }
  return app;
}

function createServer(
  deps: GatewayDeps,
  recorder: RequestRecorder,
  paths: AllowedMethods,
): FastifyInstance {
  const app = Fastify({
    logger: deps.logger ?? false,
    // Fastify's two lines a request cost CPU on the hot path; failures are logged by us.
    logController: new LogController({ disableRequestLogging: true }),
    genReqId: requestIdOf,
    requestIdHeader: false,
    return503OnClosing: true,
    forceCloseConnections: "idle",
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH, querystringParser: parseQueryString },
    trustProxy: trustProxyOption(deps.trustProxy),
    ...listenerServerOptions(deps.listener ?? {}, { maxHeaderSize: MAX_HEADER_BYTES }),
    // Bad URLs and over-long params are refused by the router before any handler:
    // answer them as problem+json like every other gateway error, naming the
    // route and param they were for. No route, so no onResponse hook either:
    // counted and logged here.
    frameworkErrors: (error, req, reply) => {
      const refused = paths.refusedParam(req.method, pathOf(req.url), MAX_PARAM_LENGTH);
      recordWhenSent(recorder, req, reply, refused?.route);
      deps.spans?.refused(req, reply, refused?.route);
      return sendProblem(
        refused === undefined ? error : badParam(refused),
        req,
        reply,
        refused?.route,
      );
    },
    clientErrorHandler: answerClientError(recorder),
  });
  // Per-request child loggers cost CPU on every request; lines we log carry the request id.
  app.setChildLoggerFactory((logger) => logger);
  return app;
}

/** A number of hops as the function Fastify's typings take (it believes the `hops` nearest). */
function trustProxyOption(trust: GatewayDeps["trustProxy"]) {
  if (typeof trust !== "number") return trust ?? false;
  return (_address: string, hop: number) => hop < trust;
}

function acceptJsonOnly(app: FastifyInstance): void {
  // Kept as text (the pipeline parses it losslessly and measures it), but read as
  // bytes: a string parser turns bytes that are not UTF-8 into U+FFFD, silently,
  // on both sides (legacy got the replaced text too).
  const utf8Text = (
    req: FastifyRequest,
    body: Buffer,
    done: (error: Error | null, text?: string) => void,
  ) => {
    // No route: the answer is a 404 or 405, whatever the body (unread here).
    if (req.is404) return done(null);
    const refused = charsetRefusal(req.headers["content-type"]);
    if (refused !== undefined) return done(refused);
    const encoding = req.headers["content-encoding"];
    const codings = encoding === undefined ? NO_CODINGS : codingsOf(encoding);
    if (codings.length > 0) {
      const limit = req.routeOptions.bodyLimit;
      const decoded = undoCodings(codings, body, limit);
      if (!Buffer.isBuffer(decoded)) return done(codingRefusal(decoded, limit));
      body = decoded;
      // The decoded body is what goes on, to legacy too: without its coding.
      delete req.headers["content-encoding"];
    }
    const text = jsonText(req.headers["content-type"], body);
    if (text instanceof TurnoutError) return done(text);
    done(null, text);
  };
  // Fastify also parses text/plain by default; a JSON gateway takes JSON only (else 415).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("application/json", { parseAs: "buffer" }, utf8Text);
  // Fastify tests this against the whole header, parameters included.
  app.addContentTypeParser(
    /^application\/[\w.+-]+\+json(?:\s*;.*)?$/i,
    { parseAs: "buffer" },
    utf8Text,
  );
  app.addContentTypeParser("*", (req, _payload, done) =>
    req.is404 ? done(null, undefined) : done(mediaTypeRefusal(req), undefined),
  );
}

/** Names what was sent and what is taken (Fastify's own 415 says only "Unsupported Media Type"). */
function mediaTypeRefusal(req: FastifyRequest): TurnoutError {
  const type = req.headers["content-type"];
  const taken = "send application/json or application/*+json, in UTF-8";
  return new TurnoutError(
    "TURNOUT_ERR_UNSUPPORTED_MEDIA_TYPE",
    type === undefined || type.trim() === ""
      ? `a request body needs a Content-Type: ${taken}`
      : `content type ${JSON.stringify(type)} is not supported: ${taken}`,
  );
}

/** Shared: most bodies come without a Content-Encoding, and need no array of their own. */
const NO_CODINGS: readonly string[] = [];

/**
 * A body sent compressed (Content-Encoding gzip, deflate or br, as legacy
 * stacks such as Express's body-parser take them) is decoded, up to the
 * route's bodyLimit; any other coding is a 415 naming it (RFC 9110 section 8.4.1).
 */
function codingRefusal(failure: DecodeFailure, limit: number): TurnoutError {
  const { failed, coding } = failure;
  if (failed === "unknown") {
    return new TurnoutError(
      "TURNOUT_ERR_UNSUPPORTED_MEDIA_TYPE",
      `content coding "${coding}" is not supported: send the body as is, or with gzip, deflate or br`,
    );
  }
  if (failed === "too_large") {
    return new TurnoutError(
      "TURNOUT_ERR_BODY_TOO_LARGE",
      `the request body decodes (${coding}) to more than the route's limit of ${limit} bytes`,
    );
  }
  return new TurnoutError(
    "TURNOUT_ERR_BAD_JSON",
    `the request body is not valid ${coding} data, as its Content-Encoding says`,
  );
}

/**
 * Fastify does not read the body of a GET or HEAD, so one sent would be lost
 * on either side (legacy got the request without it): refused instead. An
 * empty body is no body: `Content-Length: 0`, or a chunked one that ends
 * without a byte (`0\r\n\r\n`), which only its end tells.
 */
const refuseBody: onRequestHookHandler = (req, reply, done) => {
  const { "content-length": length, "transfer-encoding": encoding } = req.headers;
  if (encoding !== undefined) return refuseChunkedBody(req, reply, done);
  if (length === undefined || length === "0") return done();
  done(bodyRefused(req));
};

function bodyRefused(req: FastifyRequest): FastifyError {
  return new TurnoutError(
    "TURNOUT_ERR_BAD_JSON",
    `a ${req.method} request takes no body (the gateway would drop it)`,
  ) as FastifyError;
}

/**
 * Reads a chunked body up to its end, or its first byte (refused, like a
 * declared length: the rest is read and dropped, so the connection serves its
 * next request). Settled once, whatever comes first: the end, a byte, the
 * listener's request timeout (a 408 emitted on the body, see
 * answerInProgress) or a client that leaves (the error handler records it as
 * gone). A body that failed to arrive closes the connection, as Fastify does
 * for the bodies it reads: the client may still be sending it.
 */
function refuseChunkedBody(
  req: FastifyRequest,
  reply: FastifyReply,
  done: (error?: FastifyError) => void,
): void {
  const body = req.raw;
  const settle = (error?: FastifyError) => {
    body.off("data", onData).off("end", onEnd).off("error", onError).off("close", onClose);
    done(error);
  };
  const onData = (chunk: Buffer) => {
    if (chunk.length > 0) settle(bodyRefused(req));
  };
  const onEnd = () => settle();
  const failed = (error: FastifyError) => {
    reply.header("connection", "close");
    settle(error);
  };
  const onError = (error: Error) => failed(error as FastifyError);
  const onClose = () => failed(clientLeftMidBody());
  body.on("data", onData).on("end", onEnd).on("error", onError).on("close", onClose);
}

function clientLeftMidBody(): FastifyError {
  return new TurnoutError(
    "TURNOUT_ERR_MALFORMED_REQUEST",
    "the connection closed before the request's body ended",
  ) as FastifyError;
}

/**
 * Counts every answer and writes its one log line (in place of Fastify's two)
 * at info, whichever way it was made: through a route or the not-found
 * handler (the onResponse hook), or before routing (by hand, off the hot path).
 */
class RequestRecorder {
  readonly #metrics: GatewayMetrics;
  readonly #spans: RequestSpans | undefined;
  #logRequests = false;

  constructor(metrics: GatewayMetrics, spans: RequestSpans | undefined) {
    this.#metrics = metrics;
    this.#spans = spans;
  }

  /** The level is checked once, here: pino's method (Fastify's base logger type lacks it). */
  logTo(app: FastifyInstance): void {
    const log = app.log as { isLevelEnabled?: (level: string) => boolean };
    this.#logRequests = log.isLevelEnabled?.("info") ?? false;
  }

  record(
    req: FastifyRequest,
    status: number,
    ms: number,
    route = req.routeOptions.config.routeName ?? UNMATCHED_ROUTE,
  ): void {
    req.recorded = true;
    this.#metrics.route(route).observeRequest(req.backend, status, ms / 1000);
    if (this.#logRequests) logRequest(req, route, status, ms);
  }

  /**
   * When the client left before its answer: records it as nginx's 499 (client
   * closed request) and hijacks the reply, so nothing more is written and no
   * onResponse follows (Fastify runs none for a destroyed response: without
   * this, abandoned requests were missing from the counts and the log).
   */
  readonly recordIfGone = (req: FastifyRequest, reply: FastifyReply): boolean => {
    if (!reply.raw.destroyed && req.raw.socket?.destroyed !== true) return false;
    reply.hijack();
    this.record(req, CLIENT_CLOSED_REQUEST, reply.elapsedTime);
    this.#spans?.ended(req, CLIENT_CLOSED_REQUEST);
    return true;
  };

  /**
   * A streamed answer can end cut short after its head went out: the client
   * left (499), or the upstream broke off mid-body (502: the client's 200 came
   * with a truncated body). Fastify runs no onResponse then, so it is recorded
   * here, once, when the response closes unfinished.
   */
  readonly watchStream = (req: FastifyRequest, reply: FastifyReply, body: Readable): void => {
    let upstreamBrokeOff = false;
    body.once("error", () => {
      upstreamBrokeOff = true;
    });
    reply.raw.once("close", () => {
      if (reply.raw.writableFinished || req.recorded) return;
      const status = upstreamBrokeOff ? UPSTREAM_BROKE_OFF : CLIENT_CLOSED_REQUEST;
      this.record(req, status, reply.elapsedTime);
      this.#spans?.ended(req, status);
    });
  };

  /** A request Node refused before it was parsed: no method, path or duration to tell. */
  recordRefused(log: FastifyInstance["log"], status: number): string {
    this.#metrics.requests.cell(UNMATCHED_ROUTE, "gateway", String(status)).inc();
    const requestId = randomUUID();
    if (this.#logRequests) {
      log.info({ requestId, route: UNMATCHED_ROUTE, backend: "gateway", status }, "request");
    }
    return requestId;
  }
}

function observeEachRequest(app: FastifyInstance, recorder: RequestRecorder): void {
  recorder.logTo(app);
  // Callback-style: an async hook costs a promise per request on the hot path.
  app.addHook("onResponse", (req, reply, done) => {
    recorder.record(req, reply.statusCode, reply.elapsedTime);
    done();
  });
}

/** For an answer made outside any route's hooks: recorded once it is sent. */
function recordWhenSent(
  recorder: RequestRecorder,
  req: FastifyRequest,
  reply: FastifyReply,
  route?: string,
) {
  const started = performance.now();
  reply.raw.once("finish", () =>
    recorder.record(req, reply.statusCode, performance.now() - started, route),
  );
}

/** Said without the URL: Fastify's own message quotes it whole, query string included. */
function badParam(refused: RefusedParam): TurnoutError {
  return new TurnoutError(
    "TURNOUT_ERR_BAD_PARAM",
    `path parameter "${refused.param}" ${refused.why}`,
    {
      field: refused.param,
    },
  );
}

/** nginx's status for a client that closed its connection before the answer. */
const CLIENT_CLOSED_REQUEST = 499;
/** Recorded for a streamed answer the upstream broke off after its head was sent. */
const UPSTREAM_BROKE_OFF = 502;

/** Node's errors for requests it could not read, as our codes (anything else is malformed). */
const CLIENT_ERRORS: Readonly<Record<string, { code: ErrorCode; detail: string }>> = {
  ERR_HTTP_REQUEST_TIMEOUT: {
    code: "TURNOUT_ERR_REQUEST_TIMEOUT",
    detail: "the request was not received whole within the listener's request timeout",
  },
  HPE_HEADER_OVERFLOW: {
    code: "TURNOUT_ERR_HEADERS_TOO_LARGE",
    detail: `the request's headers are larger than ${MAX_HEADER_BYTES} bytes`,
  },
};

function clientErrorOf(error: Error & { code?: string }): TurnoutError {
  const known = CLIENT_ERRORS[error.code ?? ""];
  if (known !== undefined) return new TurnoutError(known.code, known.detail, { cause: error });
  const reason = "reason" in error && typeof error.reason === "string" ? `: ${error.reason}` : "";
  return new TurnoutError(
    "TURNOUT_ERR_MALFORMED_REQUEST",
    `the request is not valid HTTP/1.1${reason}`,
    {
      cause: error,
    },
  );
}

/**
 * Node refuses a request it cannot read before Fastify sees one: a malformed
 * request line or header (400), headers over the limit (431), a client too
 * slow to send its request (408). Answered as problem+json like every other
 * refusal, and counted and logged like every other answer; the connection is
 * closed, as nothing after the bad bytes can be trusted to start a request.
 */
function answerClientError(recorder: RequestRecorder) {
  return function onClientError(
    this: FastifyInstance,
    error: Error & { code?: string },
    socket: Socket,
  ): void {
    // A reset connection has nobody to answer.
    if (error.code === "ECONNRESET" || socket.destroyed) return;
    const inProgress = (socket as { _httpMessage?: ServerResponse | null })._httpMessage;
    if (inProgress !== undefined && inProgress !== null) {
      answerInProgress(inProgress, error, socket);
      return;
    }
    const refusal = clientErrorOf(error);
    const requestId = recorder.recordRefused(this.log, refusal.status);
    if (socket.writable) {
      const body = JSON.stringify(toProblem(refusal, requestId));
      socket.write(
        `HTTP/1.1 ${refusal.status} ${STATUS_CODES[refusal.status]}\r\n` +
          `Content-Length: ${Buffer.byteLength(body)}\r\nContent-Type: ${PROBLEM_CONTENT_TYPE}\r\n` +
          `X-Request-Id: ${requestId}\r\nConnection: close\r\n\r\n${body}`,
      );
    }
    socket.destroy(error);
  };
}

/**
 * The error hit a request Fastify already has (its headers arrived, its body
 * had not), which answers and records it, once: a body that stops arriving
 * (408) or does not parse (a bad chunk size: 400) fails the body read,
 * answered on its route like any refusal (with `Connection: close`). Past
 * that (no body being read, or the answer started) the connection is cut, and
 * a client that broke off is recorded as gone (499).
 */
function answerInProgress(
  response: ServerResponse,
  error: Error & { code?: string },
  socket: Socket,
): void {
  const body = response.req;
  // The stream ending mid-body is the client leaving, not bytes that do not parse.
  const gone = error.code === "HPE_INVALID_EOF_STATE";
  if (!gone && !response.headersSent && body.listenerCount("error") > 0) {
    body.emit("error", clientErrorOf(error));
    return;
  }
  socket.destroy(error);
}

function logRequest(req: FastifyRequest, route: string, status: number, ms: number): void {
  req.log.info(
    {
      requestId: req.id,
      route,
      backend: req.backend,
      status,
      durationMs: Math.round(ms * 1000) / 1000,
      method: req.method,
      path: pathOf(req.url),
      traceId: traceIdOf(req.headers.traceparent),
    },
    "request",
  );
}

/** Every error, unknown path and wrong method is answered as problem+json. */
function answerProblems(
  app: FastifyInstance,
  paths: AllowedMethods,
  isDraining: () => boolean,
  recorder: RequestRecorder,
): void {
  app.setErrorHandler((error, req, reply) => {
    if (recorder.recordIfGone(req, reply)) return;
    if (isDraining()) reply.header("connection", "close");
    return sendProblem(error, req, reply);
  });
  app.setNotFoundHandler((req, reply) => {
    const methods = paths.allowed(pathOf(req.url));
    // A method the path serves that still got here did not match the router (a bad URL): 404.
    if (methods.length === 0 || methods.includes(req.method)) {
      const error = new TurnoutError(
        "TURNOUT_ERR_NOT_FOUND",
        `no route for ${req.method} ${req.url}`,
      );
      return sendProblem(error, req, reply);
    }
    reply.header("allow", methods.join(", "));
    const error = new TurnoutError(
      "TURNOUT_ERR_METHOD_NOT_ALLOWED",
      `${req.method} is not served here; use ${methods.join(", ")}`,
    );
    return sendProblem(error, req, reply);
  });
}

function compileHandler(
  app: FastifyInstance,
  route: RouteConfig,
  deps: GatewayDeps,
  isDraining: () => boolean,
  recorder: RequestRecorder,
): RouteHandler {
  const compile = route.mode === "publish" ? compilePublishPipeline : compileNatsPipeline;
  return compileRouteHandler({
    route,
    natsCall: compile(route, deps.root, deps.requester, deps.metrics.route(route.name)),
    legacy: deps.legacy,
    cutover: deps.cutover.of(route.name),
    cutoverLoaded: deps.cutoverLoaded ?? (() => true),
    mirrors: deps.mirrors,
    adminToken: deps.adminToken,
    metrics: deps.metrics,
    deadLetters: deps.deadLetters,
    log: app.log,
    isDraining,
    clientGone: recorder.recordIfGone,
    watchStream: recorder.watchStream,
  });
}

function registerRoute(
  app: FastifyInstance,
  route: RouteConfig,
  handler: RouteHandler,
  metrics: GatewayMetrics,
): void {
  const { onRequest: limitRate } = rateLimitRouteOptions(app, route, metrics);
  const bodyless = route.method === "GET" || route.method === "HEAD";
  const hooks = [bodyless ? refuseBody : undefined, limitRate];
  app.route({
    method: route.method,
    url: route.path,
    bodyLimit: route.bodyLimitBytes,
    config: { routeName: route.name },
    onRequest: hooks.filter((hook) => hook !== undefined),
    handler,
  });
}

/** Fastify's 413 says "Request body is too large": the client is told the limit. */
function namingTheLimit(error: unknown, req: FastifyRequest): unknown {
  if ((error as { code?: unknown } | null)?.code !== "FST_ERR_CTP_BODY_TOO_LARGE") return error;
  return new TurnoutError(
    "TURNOUT_ERR_BODY_TOO_LARGE",
    `the request body is larger than the route's limit of ${req.routeOptions.bodyLimit} bytes`,
    { cause: error },
  );
}

function sendProblem(
  error: unknown,
  req: FastifyRequest,
  reply: FastifyReply,
  route = req.routeOptions.config.routeName,
): FastifyReply {
  const problem = toProblem(namingTheLimit(error, req), req.id, route);
  reply.header("x-request-id", req.id);
  if (!BACKEND_FAULTS.has(problem.code)) req.backend = "gateway";
  if (isInternal(problem)) req.log.error({ err: error, requestId: req.id }, "request failed");
  return reply
    .code(problem.status)
    .header("content-type", PROBLEM_CONTENT_TYPE)
    .send(JSON.stringify(problem));
}
