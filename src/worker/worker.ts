/**
 * startWorker: a NATS worker in a few lines. Subscribes in a queue group, decodes
 * each request with the route's protobuf type, calls `handle`, encodes the answer,
 * and turns a thrown ServiceError into the NATS services error headers. The
 * worker registers as a NATS service (service.ts) for discovery and stats.
 */
import { headers, type Msg, type MsgHdrs, type NatsConnection } from "@nats-io/transport-node";
import type protobuf from "protobufjs";
import { REQUEST_ID_HEADER, ROUTE_HEADER } from "../backends/nats/headers.js";
import { HTTP_STATUS, SERVICE_ERROR, SERVICE_ERROR_CODE } from "../backends/nats/reply.js";
import { type ServiceIdentity, ServiceRegistration } from "./service.js";
import { ServiceError } from "./service-error.js";

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
  /** Set to answer with another 2xx status than 200, e.g. 201. */
  httpStatus: number | undefined;
}

export interface WorkerOptions<Req, Res> {
  nc: NatsConnection;
  root: protobuf.Root;
  subject: string;
  /** Queue group: workers in the same group share the requests. */
  queue?: string;
  /** Fully qualified type names, e.g. `users.v1.GetUserRequest`. */
  requestType: string;
  responseType: string;
  /** Type of ServiceError bodies; without it, bodies are not sent. */
  errorType?: string;
  handle: (request: Req, ctx: WorkerContext) => Promise<Res> | Res;
  /** Called with any error other than a ServiceError (answered as 500); default console.error. */
  onError?: (err: unknown, ctx: WorkerContext) => void;
  /** How it shows in `$SRV` discovery (`nats micro ls`); default DEFAULT_SERVICE. */
  service?: ServiceIdentity;
}

export interface Worker {
  /** Its id in `$SRV` discovery. */
  readonly serviceId: string;
  /** Stops taking requests, finishes those in progress (their replies are sent). */
  stop(): Promise<void>;
}

// `Req = any` by default: protobufjs decodes to untyped messages; workers name their own type.
// biome-ignore lint/suspicious/noExplicitAny: see above
export function startWorker<Req = any, Res extends object = object>(
  opts: WorkerOptions<Req, Res>,
): Worker {
  const requestType = opts.root.lookupType(opts.requestType);
  const responseType = opts.root.lookupType(opts.responseType);
  const errorType = opts.errorType === undefined ? undefined : opts.root.lookupType(opts.errorType);
  const onError = opts.onError ?? ((err: unknown) => console.error(err));
  const queue = opts.queue ?? DEFAULT_QUEUE;
  const identity = opts.service ?? DEFAULT_SERVICE;
  const service = new ServiceRegistration(opts.nc, identity, {
    name: identity.endpoint ?? requestType.name,
    subject: opts.subject,
    queueGroup: queue,
  });
  let active = 0;
  let idle: (() => void) | undefined;

  /**
   * Answers one request. A handler that returns a plain value is answered at
   * once, without a promise or a microtask per request; a promise is returned
   * only while an async handler runs, for stop() to wait on.
   */
  function serve(msg: Msg): Promise<void> | undefined {
    const ctx = contextOf(msg, performance.now());
    let request: Req;
    try {
      request = requestType.decode(msg.data) as Req;
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      replyError(msg, ctx, 400, `undecodable ${opts.requestType}: ${why}`);
      return undefined;
    }
    let result: Promise<Res> | Res;
    try {
      result = opts.handle(request, ctx);
    } catch (err) {
      fail(msg, ctx, err);
      return undefined;
    }
    if (!isThenable(result)) {
      answer(msg, ctx, result);
      return undefined;
    }
    return Promise.resolve(result).then(
      (response) => answer(msg, ctx, response),
      (err: unknown) => fail(msg, ctx, err),
    );
  }

  function answer(msg: Msg, ctx: RequestContext, response: Res): void {
    try {
      const invalid = responseType.verify(response);
      if (invalid !== null)
        throw new Error(`response is not a valid ${opts.responseType}: ${invalid}`);
      replyOk(msg, responseType.encode(response).finish(), ctx.httpStatus);
      service.record(performance.now() - ctx.receivedAt);
    } catch (err) {
      fail(msg, ctx, err);
    }
  }

  function fail(msg: Msg, ctx: RequestContext, err: unknown): void {
    if (err instanceof ServiceError) {
      const body = err.body && errorType ? errorType.encode(err.body).finish() : undefined;
      replyError(msg, ctx, err.code, err.message, body);
      return;
    }
    onError(err, ctx);
    replyError(msg, ctx, 500, "internal error");
  }

  function replyError(
    msg: Msg,
    ctx: RequestContext,
    code: number,
    message: string,
    body?: Uint8Array,
  ): void {
    // Header values cannot hold line breaks.
    const oneLine = message.replace(/[\r\n]+/g, " ");
    const h = headers();
    h.set(SERVICE_ERROR_CODE, String(code));
    h.set(SERVICE_ERROR, oneLine);
    msg.respond(body, { headers: h });
    service.record(performance.now() - ctx.receivedAt, `${code}:${oneLine}`);
  }

  const sub = opts.nc.subscribe(opts.subject, {
    queue,
    callback: (err, msg) => {
      if (err !== null) return onError(err, contextOf({ subject: opts.subject } as Msg, 0));
      const running = serve(msg);
      if (running === undefined) return;
      active++;
      void running.finally(() => {
        if (--active === 0) idle?.();
      });
    },
  });

  return {
    serviceId: service.id,
    async stop() {
      if (!sub.isClosed()) await sub.drain();
      if (active > 0) await new Promise<void>((resolve) => (idle = resolve));
      service.stop();
    },
  };
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
