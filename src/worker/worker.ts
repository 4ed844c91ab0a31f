/**
 * startService / startWorker: a NATS worker in a few lines. Subscribes each
 * endpoint in a queue group, decodes each request with the route's protobuf
 * type, calls `handle`, encodes the answer, and turns a thrown ServiceError
 * into the NATS services error headers. The instance registers as a NATS
 * service (service.ts) for discovery and stats.
 */
import { headers, type Msg, type MsgHdrs, type NatsConnection } from "@nats-io/transport-node";
import type protobuf from "protobufjs";
import { REQUEST_ID_HEADER, ROUTE_HEADER } from "../backends/nats/headers.js";
import { HTTP_STATUS, SERVICE_ERROR, SERVICE_ERROR_CODE } from "../backends/nats/reply.js";
import { decodeStrictly } from "../codec/printer.js";
import { TurnoutError } from "../errors.js";
import { type EndpointStats, type ServiceIdentity, ServiceRegistration } from "./service.js";
import { ServiceError } from "./service-error.js";
import { compileShapeCheck } from "./shape.js";

export const DEFAULT_QUEUE = "turnout-workers";

/** The identity of a worker that names none: give yours a name and a version. */
export const DEFAULT_SERVICE: ServiceIdentity = { name: "turnout-worker", version: "0.0.0" };

export interface WorkerContext {
  readonly subject: string;
  readonly headers: MsgHdrs | undefined;
  /** The gateway's X-Request-Id, for logs. */
  readonly requestId: string | undefined;
  /** The gateway route (Turnout-Route) the request came through. */
  readonly route: string | undefined;
  /** Set to answer with another 2xx status than 200, e.g. 201; anything else is a 500. */
  httpStatus: number | undefined;
}

/** One subject a service answers, with its types and handler. */
export interface EndpointOptions<Req, Res> {
  subject: string;
  /** Fully qualified type names, e.g. `users.v1.GetUserRequest`. */
  requestType: string;
  responseType: string;
  /** Type of ServiceError bodies; without it, bodies are not sent. */
  errorType?: string;
  handle: (request: Req, ctx: WorkerContext) => Promise<Res> | Res;
  /** Its name in `$SRV` discovery; default the request type's message name. */
  endpoint?: string;
}

/** What every endpoint of a service shares. */
interface ServiceBase {
  nc: NatsConnection;
  root: protobuf.Root;
  /** Queue group: instances in the same group share the requests. */
  queue?: string;
  /**
   * Called with any error other than a ServiceError (answered as 500), including
   * a result or error body the kit refused or could not send; default console.error.
   */
  onError?: (err: unknown, ctx: WorkerContext) => void;
  /** How it shows in `$SRV` discovery (`nats micro ls`); default DEFAULT_SERVICE. */
  service?: ServiceIdentity;
}

/** A service with one endpoint. */
export interface WorkerOptions<Req, Res> extends ServiceBase, EndpointOptions<Req, Res> {}

export interface ServiceOptions extends ServiceBase {
  /** At least one; their names in discovery must differ. */
  // biome-ignore lint/suspicious/noExplicitAny: each endpoint has its own request and response types
  endpoints: readonly EndpointOptions<any, any>[];
}

/** A running service instance. */
export interface Worker {
  /** Its id in `$SRV` discovery. */
  readonly serviceId: string;
  /** Stops taking requests, finishes those in progress (their replies are sent). */
  stop(): Promise<void>;
}

/** A service instance with one endpoint: see startService. */
// `Req = any` by default: protobufjs decodes to untyped messages; workers name their own type.
// biome-ignore lint/suspicious/noExplicitAny: see above
export function startWorker<Req = any, Res extends object = object>(
  opts: WorkerOptions<Req, Res>,
): Worker {
  const { nc, root, queue, onError, service, ...endpoint } = opts;
  return startService({ nc, root, queue, onError, service, endpoints: [endpoint] });
}

/**
 * Starts one instance of a service: each endpoint's subject is subscribed in
 * the queue group, and the instance registers once in `$SRV` discovery with
 * all its endpoints, each with its own STATS counters. Unknown types, or a
 * name or version the protocol refuses, throw before anything is subscribed.
 */
export function startService(opts: ServiceOptions): Worker {
  const queue = opts.queue ?? DEFAULT_QUEUE;
  const onError = containReporter(opts.onError ?? ((err: unknown) => console.error(err)));
  const typed = opts.endpoints.map((endpoint) => ({
    endpoint,
    types: lookupTypes(opts.root, endpoint),
  }));
  const registration = new ServiceRegistration(
    opts.nc,
    opts.service ?? DEFAULT_SERVICE,
    typed.map(({ endpoint, types }) => ({
      name: endpoint.endpoint ?? types.request.name,
      subject: endpoint.subject,
      queueGroup: queue,
    })),
  );
  const inProgress = new InProgress();
  const subscriptions = typed.map(({ endpoint, types }, i) => {
    const serve = compileServe(
      endpoint,
      types,
      registration.endpoints[i] as EndpointStats,
      onError,
    );
    return opts.nc.subscribe(endpoint.subject, {
      queue,
      callback: (err, msg) => {
        if (err !== null) return onError(err, contextOf({ subject: endpoint.subject } as Msg, 0));
        // A throw here would reach nats.js's reader loop and end all delivery on the connection.
        try {
          inProgress.track(serve(msg));
        } catch (thrown) {
          onError(thrown, contextOf(msg, 0));
        }
      },
    });
  });

  return {
    serviceId: registration.id,
    async stop() {
      await Promise.all(subscriptions.map((sub) => (sub.isClosed() ? undefined : sub.drain())));
      await inProgress.settled();
      registration.stop();
    },
  };
}

interface EndpointTypes {
  readonly request: protobuf.Type;
  readonly response: protobuf.Type;
  readonly error: protobuf.Type | undefined;
}

function lookupTypes(
  root: protobuf.Root,
  endpoint: EndpointOptions<unknown, object>,
): EndpointTypes {
  return {
    request: root.lookupType(endpoint.requestType),
    response: root.lookupType(endpoint.responseType),
    error: endpoint.errorType === undefined ? undefined : root.lookupType(endpoint.errorType),
  };
}

/** Counts the async handlers still running, for stop() to wait on (any number of callers). */
class InProgress {
  #active = 0;
  #waiting: (() => void)[] = [];

  track(running: Promise<void> | undefined): void {
    if (running === undefined) return;
    this.#active++;
    // Both ways: a rejection is serve's to report; here it must only not go unhandled.
    const done = () => this.#done();
    void running.then(done, done);
  }

  #done(): void {
    if (--this.#active > 0) return;
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const resolve of waiting) resolve();
  }

  settled(): Promise<void> {
    if (this.#active === 0) return Promise.resolve();
    return new Promise((resolve) => this.#waiting.push(resolve));
  }
}

type Serve = (msg: Msg) => Promise<void> | undefined;
type Report = (err: unknown, ctx: WorkerContext) => void;

/** A result, error body or status the kit refuses to send: its message names the problem. */
class InvalidReplyError extends TurnoutError {
  constructor(message: string, cause?: unknown) {
    super("TURNOUT_ERR_INTERNAL", message, { cause });
  }
}

/** onError is the app's code: a throw from it must not take the worker down with it. */
function containReporter(onError: Report): Report {
  return (err, ctx) => {
    try {
      onError(err, ctx);
    } catch (thrown) {
      console.error("turnout/worker: onError threw", thrown, "while reporting", err);
    }
  };
}

function compileServe<Req, Res extends object>(
  endpoint: EndpointOptions<Req, Res>,
  types: EndpointTypes,
  stats: EndpointStats,
  report: Report,
): Serve {
  const checkResponse = compileShapeCheck(types.response);
  const checkErrorBody = types.error === undefined ? undefined : compileShapeCheck(types.error);

  /**
   * Answers one request. A handler that returns a plain value is answered at
   * once, without a promise or a microtask per request; a promise is returned
   * only while an async handler runs, for stop() to wait on. Nothing here
   * throws or rejects: every failure becomes an error reply and a report.
   */
  function serve(msg: Msg): Promise<void> | undefined {
    const ctx = contextOf(msg, performance.now());
    let request: Req;
    try {
      request = decodeStrictly(types.request, msg.data) as Req;
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      replyError(msg, ctx, 400, `undecodable ${endpoint.requestType}: ${why}`);
      return undefined;
    }
    let result: Promise<Res> | Res;
    try {
      result = endpoint.handle(request, ctx);
    } catch (err) {
      fail(msg, ctx, err);
      return undefined;
    }
    if (!isThenable(result)) {
      answer(msg, ctx, result);
      return undefined;
    }
    return Promise.resolve(result)
      .then(
        (response) => answer(msg, ctx, response),
        (err: unknown) => fail(msg, ctx, err),
      )
      .catch((err: unknown) => report(err, ctx));
  }

  function answer(msg: Msg, ctx: RequestContext, response: Res): void {
    try {
      checkHttpStatus(ctx.httpStatus);
      const invalid = checkResponse(response);
      if (invalid !== null) {
        throw new InvalidReplyError(`response is not a valid ${endpoint.responseType}: ${invalid}`);
      }
      replyOk(msg, types.response.encode(response).finish(), ctx.httpStatus);
      stats.record(performance.now() - ctx.receivedAt);
    } catch (err) {
      fail(msg, ctx, err);
    }
  }

  function fail(msg: Msg, ctx: RequestContext, err: unknown): void {
    if (err instanceof ServiceError) {
      failWith(msg, ctx, err);
      return;
    }
    report(err, ctx);
    replyError(msg, ctx, 500, err instanceof InvalidReplyError ? err.message : "internal error");
  }

  function failWith(msg: Msg, ctx: RequestContext, err: ServiceError): void {
    let body: Uint8Array | undefined;
    try {
      body = encodeErrorBody(err);
    } catch (bad) {
      fail(msg, ctx, bad);
      return;
    }
    replyError(msg, ctx, err.code, err.message, body);
  }

  function encodeErrorBody(err: ServiceError): Uint8Array | undefined {
    if (err.body === undefined || types.error === undefined || checkErrorBody === undefined) {
      return undefined;
    }
    const invalid = checkErrorBody(err.body);
    if (invalid !== null) {
      throw new InvalidReplyError(
        `ServiceError ${err.code} body is not a valid ${endpoint.errorType}: ${invalid}`,
      );
    }
    return types.error.encode(err.body).finish();
  }

  /** Sends an error reply; one that cannot go (too large, say) is replaced by a plain 500. */
  function replyError(
    msg: Msg,
    ctx: RequestContext,
    code: number,
    message: string,
    body?: Uint8Array,
  ): void {
    // Header values cannot hold line breaks.
    const oneLine = message.replace(/[\r\n]+/g, " ");
    try {
      respondError(msg, code, oneLine, body);
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      report(new InvalidReplyError(`the ${code} error reply could not be sent: ${why}`, err), ctx);
      replyUnsendable(msg, ctx, code, why);
      return;
    }
    stats.record(performance.now() - ctx.receivedAt, `${code}:${oneLine}`);
  }

  function replyUnsendable(msg: Msg, ctx: RequestContext, code: number, why: string): void {
    const message = `internal error: the ${code} error reply could not be sent (${why})`
      .replace(/[\r\n]+/g, " ")
      .slice(0, 512);
    try {
      respondError(msg, 500, message);
    } catch (err) {
      // Not even a bodiless reply goes (connection closed): the caller times out.
      report(err, ctx);
    }
    stats.record(performance.now() - ctx.receivedAt, `500:${message}`);
  }

  return serve;
}

/** The gateway takes only 200-299 as a success status: anything else would be a 502 there. */
function checkHttpStatus(status: number | undefined): void {
  if (status === undefined || (Number.isInteger(status) && status >= 200 && status <= 299)) return;
  throw new InvalidReplyError(`ctx.httpStatus must be an integer 200-299, got ${String(status)}`);
}

function respondError(msg: Msg, code: number, message: string, body?: Uint8Array): void {
  const h = headers();
  h.set(SERVICE_ERROR_CODE, String(code));
  h.set(SERVICE_ERROR, message);
  msg.respond(body, { headers: h });
}

/**
 * The context of one request. Its header-derived fields are read on first use:
 * decoding a message's headers (nats.js parses them on `msg.headers`) was a
 * notable part of a worker's per-request cost, and most handlers never look.
 */
class RequestContext implements WorkerContext {
  httpStatus: number | undefined = undefined;
  readonly #msg: Msg;

  /** `receivedAt`: performance.now() when the request came in, for the service stats. */
  constructor(
    msg: Msg,
    readonly receivedAt: number,
  ) {
    this.#msg = msg;
  }
  get subject(): string {
    return this.#msg.subject;
  }
  get headers(): MsgHdrs | undefined {
    return this.#msg.headers;
  }
  get requestId(): string | undefined {
    return this.headers?.get(REQUEST_ID_HEADER) || undefined;
  }
  get route(): string | undefined {
    return this.headers?.get(ROUTE_HEADER) || undefined;
  }
}

function isThenable<T>(value: Promise<T> | T): value is Promise<T> {
  return typeof (value as { then?: unknown } | null)?.then === "function";
}

function contextOf(msg: Msg, receivedAt: number): RequestContext {
  return new RequestContext(msg, receivedAt);
}

function replyOk(msg: Msg, data: Uint8Array, httpStatus: number | undefined): void {
  if (httpStatus === undefined) {
    msg.respond(data);
    return;
  }
  const h = headers();
  h.set(HTTP_STATUS, String(httpStatus));
  msg.respond(data, { headers: h });
}
