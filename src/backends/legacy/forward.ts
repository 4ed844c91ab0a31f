/**
 * One exchange with a legacy upstream over its undici Pool. The answer's shape
 * is what a Fastify reply takes: `reply.code(a.status).headers(a.headers)
 * .send(a.body)`, except that Fastify labels a Buffer (an empty body too)
 * without a Content-Type it can parse as application/octet-stream (see
 * serveLegacy's payloadOf).
 * Every failure is thrown as a TurnoutError mapped by failures.ts.
 */
import { EventEmitter } from "node:events";
import { pipeline, type Readable, Transform } from "node:stream";
import type { Dispatcher, Pool } from "undici";
import { TurnoutError } from "../../errors.js";
import { clientGone, deadlineError, upstreamFailure } from "./failures.js";
import { type ForwardedFrom, type HeaderMap, requestHeaders, responseHeaders } from "./headers.js";

/** The client's request as the gateway received it. */
export interface LegacyRequest extends ForwardedFrom {
  readonly method: string;
  /** Path and query string exactly as received (Fastify's `req.url`). */
  readonly url: string;
  /** The raw body (the gateway keeps JSON as text), or undefined for none. */
  readonly body: string | Buffer | undefined;
}

interface CommonOptions {
  /** Cancels the exchange; its reason becomes the `cause`. */
  readonly signal?: AbortSignal;
  /**
   * The client's response (Fastify's `reply.raw`): its "close" before the
   * answer is done means the client went away, which cancels the exchange (a
   * queued one is then never sent). Cheaper than an AbortController per
   * request: one listener on an emitter the request has anyway.
   */
  readonly client?: ClientSide;
}

/** What a forward reads of the client's response: whether, or when, it closed. */
export interface ClientSide {
  readonly destroyed: boolean;
  once(event: "close", listener: () => void): unknown;
  removeListener(event: "close", listener: () => void): unknown;
}

/**
 * For the answer the client gets: a body the upstream declares at most
 * `RELAY_WHOLE_MAX_BYTES` long is read whole first, any other is handed on as a
 * stream as it arrives.
 */
export interface RelayOptions extends CommonOptions {
  readonly mode: "relay";
}

/** Collect the body, up to a cap: for the shadow comparison. */
export interface BufferOptions extends CommonOptions {
  readonly mode: "buffer";
  readonly maxBodyBytes: number;
}

export type ForwardOptions = RelayOptions | BufferOptions;

/**
 * Reading a small body whole costs less than piping it (one write to the
 * client instead of stream plumbing: about 12% less gateway CPU a request on
 * the legacy path, over 22 interleaved A/B rounds), and a failure mid-body is
 * then a clean 502/504 instead of a cut answer. Past this size the body
 * streams, so memory stays bounded.
 */
export const RELAY_WHOLE_MAX_BYTES = 64 * 1024;

export interface LegacyAnswer<Body extends Readable | Buffer> {
  readonly status: number;
  /** The upstream's headers minus hop-by-hop ones; Set-Cookie stays an array. */
  readonly headers: HeaderMap;
  readonly body: Body;
}

/** Where a route's requests go: its origin's pool, the base URL's path and its Host. */
export interface Target {
  readonly pool: Pool;
  /** The base URL's path ("" for none), put before the client's path. */
  readonly prefix: string;
  readonly host: string;
}

/**
 * The route timeout covers everything up to the response head (queueing in the
 * pool and connecting included, unlike undici's headersTimeout); then, for a
 * streamed body, each gap between body chunks, and for a body read whole the
 * whole body too.
 */
export async function forwardTo(
  target: Target,
  request: LegacyRequest,
  timeoutMs: number,
  options: ForwardOptions,
  stallMs = CLIENT_STALL_MS,
): Promise<LegacyAnswer<Readable | Buffer>> {
  const path = target.prefix + originForm(request.url);
  const abort = new RequestAbort(timeoutMs, options);
  try {
    const response = await headBefore(
      abort,
      target.pool.request({
        method: request.method as Dispatcher.HttpMethod,
        path,
        headers: requestHeaders(request, target.host),
        body: request.body ?? null,
        signal: abort,
        bodyTimeout: timeoutMs,
      }),
    );
    checkStatus(response);
    const headers = responseHeaders(response.headers);
    const body = await answerBody(response, headers, request.method, options, abort, stallMs);
    // A body read whole is done with; a streamed one lets go once it closes.
    if (Buffer.isBuffer(body)) abort.release();
    return { status: response.statusCode, headers, body };
  } catch (error) {
    abort.release();
    throw upstreamFailure(error);
  }
}

/**
 * The response head, or the abort's reason as soon as it fires. undici only
 * acts on an abort once the request has a connection: one waiting for a
 * pooled socket (all busy on slow answers) or for its connect would be failed
 * late, after the deadline. It is still dropped unsent when its turn comes; a
 * head that arrives after all the same is discarded, freeing its socket.
 */
function headBefore(
  abort: RequestAbort,
  head: Promise<Dispatcher.ResponseData>,
): Promise<Dispatcher.ResponseData> {
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(abort.reason);
    abort.once("abort", onAbort);
    head.then(
      (response) => {
        abort.off("abort", onAbort);
        if (abort.aborted) discard(response.body);
        resolve(response);
      },
      (error: unknown) => {
        abort.off("abort", onAbort);
        reject(error);
      },
    );
  });
}

/** An answer that has no body: one shared Buffer, never written to. */
const NO_BODY = Buffer.alloc(0);

/** Not async: the hot path (a small body read whole) awaits collect's own promise, no other. */
function answerBody(
  response: Dispatcher.ResponseData,
  headers: HeaderMap,
  method: string,
  options: ForwardOptions,
  abort: RequestAbort,
  stallMs: number,
): Promise<Readable | Buffer> | Readable | Buffer {
  if (method === "HEAD" || response.statusCode === 204 || response.statusCode === 304) {
    return noBody(response.body, method, options, abort);
  }
  if (options.mode === "relay" && !declaresAtMost(headers, RELAY_WHOLE_MAX_BYTES)) {
    return streamed(response.body, abort, stallMs);
  }
  const cap = options.mode === "relay" ? RELAY_WHOLE_MAX_BYTES : options.maxBodyBytes;
  return collect(response.body, headers, cap);
}

/**
 * A HEAD answer or a 204/304 has no body, whatever its Content-Length says
 * (RFC 9110 sections 8.6, 9.3.2, 15.4.5): it is never read, as undici fails a
 * 204/304 whose Content-Length is not 0 as "too short". A relayed HEAD answer
 * stays the (empty) stream: Fastify keeps the upstream's Content-Length only
 * on a stream, and puts the length of a Buffer (0) in its place.
 */
function noBody(
  body: Readable,
  method: string,
  options: ForwardOptions,
  abort: RequestAbort,
): Readable | Buffer {
  // undici completed the exchange with the head: nothing is left to cancel.
  abort.release();
  if (method === "HEAD" && options.mode === "relay") return body;
  discard(body);
  return NO_BODY;
}

/**
 * Hands the body on as a stream once its first chunk is in, so that an
 * upstream failing before any byte (a stall past the timeout, a reset) is
 * still a coded 504/502 (counted by the breaker), not a cut or a 500 carrying
 * the upstream's headers. The chunk stays in the stream.
 */
async function streamed(
  body: Readable,
  abort: RequestAbort,
  stallMs: number,
): Promise<Readable | Buffer> {
  abort.stopTimer();
  // A caller's cancel still applies to the body, until the body is done.
  body.once("close", () => abort.release());
  if (await firstChunk(body)) return cutWhenStalled(body, stallMs);
  discard(body); // ended empty: the exchange is complete
  return NO_BODY;
}

/**
 * How long a streamed answer may stop moving before it is cut: about as long
 * as the listener gives a slow client to send its request (30 s).
 */
export const CLIENT_STALL_MS = 30_000;

/**
 * Cuts a streamed answer whose chunks stop moving for `stallMs`. A client that
 * stops reading pauses the upstream body, and undici's body timeout does not
 * run while it is paused: without this the pooled connection was held for as
 * long as the client liked, and 64 such clients held every connection to the
 * origin. A slow client that still reads keeps it moving.
 */
function cutWhenStalled(body: Readable, stallMs: number): Readable {
  const relay = new Transform({
    transform(chunk, _encoding, done) {
      timer.refresh();
      done(null, chunk);
    },
  });
  const timer = setTimeout(() => relay.destroy(stalled(stallMs)), stallMs);
  pipeline(body, relay, () => clearTimeout(timer));
  return relay;
}

function stalled(stallMs: number): TurnoutError {
  return new TurnoutError(
    "TURNOUT_ERR_UPSTREAM_TIMEOUT",
    `the streamed answer did not move for ${stallMs} ms (the client stopped reading, or the upstream stalled): cut to free its connection`,
  );
}

/** True once the body has a chunk buffered, false when it ended empty; rejects with its failure. */
function firstChunk(body: Readable): Promise<boolean> {
  if (body.errored) return Promise.reject(body.errored);
  if (body.readableLength > 0) return Promise.resolve(true);
  return new Promise((resolve, reject) => {
    const settle = (error: unknown, hasBytes: boolean) => {
      body.off("readable", onReadable).off("end", onEnd).off("error", onError);
      body.off("close", onClose);
      if (error === undefined) resolve(hasBytes);
      else reject(error);
    };
    // "readable" with nothing buffered is the end. Once the listener is gone,
    // the stream flows again for whoever reads it (no chunk is taken here).
    const onReadable = () => settle(undefined, body.readableLength > 0);
    const onEnd = () => settle(undefined, false);
    const onError = (error: unknown) => settle(error, false);
    const onClose = () => settle(body.errored ?? closedEarly(), false);
    body.on("readable", onReadable).on("end", onEnd).on("error", onError).on("close", onClose);
  });
}

function closedEarly(): TurnoutError {
  return new TurnoutError(
    "TURNOUT_ERR_UPSTREAM_RESET",
    "the legacy upstream's body closed before its first byte",
  );
}

/**
 * The path and query the upstream gets (origin-form, RFC 9112 section 3.2.1).
 * A client may send the absolute form (`GET http://host/path`): Fastify routes
 * it by its path but keeps it whole in `req.url`, and forwarded as is it would
 * name a host of the client's choosing to the upstream. Any other form (`*`)
 * names no resource of the route.
 */
export function originForm(url: string): string {
  if (url.charCodeAt(0) === SLASH) return url;
  const authority = ABSOLUTE_FORM.exec(url);
  if (authority === null) {
    throw new TurnoutError("TURNOUT_ERR_BAD_PARAM", "the request target is not a path", {
      field: "url",
    });
  }
  const rest = url.slice(authority[0].length);
  return rest.charCodeAt(0) === SLASH ? rest : `/${rest}`;
}

const SLASH = 0x2f;
/** scheme "://" authority (RFC 3986 section 3). */
const ABSOLUTE_FORM = /^[a-z][a-z\d+.-]*:\/\/[^/?#]*/i;

function declaresAtMost(headers: HeaderMap, bytes: number): boolean {
  const declared = headers["content-length"];
  return typeof declared === "string" && Number(declared) <= bytes;
}

function checkStatus(response: Dispatcher.ResponseData): void {
  const status = response.statusCode;
  // Fastify refuses to send other codes; undici handles 1xx itself.
  if (status >= 200 && status <= 599) return;
  discard(response.body);
  throw new TurnoutError("TURNOUT_ERR_UPSTREAM_BAD", `the legacy upstream sent status ${status}`);
}

async function collect(
  body: Dispatcher.ResponseData["body"],
  headers: HeaderMap,
  maxBytes: number,
): Promise<Buffer> {
  const declared = headers["content-length"];
  if (typeof declared === "string" && Number(declared) > maxBytes) {
    discard(body);
    throw tooLarge(`declares ${declared} bytes`, maxBytes);
  }
  // A declared length bounds the body (undici reads no more than it), so it is
  // read in one go, without the async iterator's per-chunk promises.
  if (typeof declared === "string") return Buffer.from(await body.arrayBuffer());
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    size += chunk.length;
    // Leaving the loop by throwing destroys the stream, and with it the connection.
    if (size > maxBytes) throw tooLarge(`sent more than ${size - chunk.length} bytes`, maxBytes);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}

/** Drops a body nobody will read: undici then reports an abort, which must not go uncaught. */
function discard(body: Readable): void {
  body.on("error", () => {});
  body.destroy();
}

function tooLarge(what: string, maxBytes: number): TurnoutError {
  return new TurnoutError(
    "TURNOUT_ERR_UPSTREAM_TOO_LARGE",
    `the legacy upstream's body ${what}, over the cap of ${maxBytes} bytes`,
  );
}

/**
 * The signal undici watches, aborted by the route deadline, the caller's
 * signal or the client going away. undici takes an EventEmitter as a signal:
 * an AbortController and its EventTarget listeners per request were about 4%
 * of the gateway's CPU on the legacy path.
 */
class RequestAbort extends EventEmitter {
  aborted = false;
  reason: unknown = undefined;
  readonly #timer: NodeJS.Timeout;
  readonly #caller: AbortSignal | undefined;
  readonly #client: ClientSide | undefined;
  readonly #onCancel = () =>
    this.#abort(this.#caller?.aborted ? this.#caller.reason : clientGone());

  constructor(timeoutMs: number, options: CommonOptions) {
    super();
    this.#timer = setTimeout(() => this.#abort(deadlineError(timeoutMs)), timeoutMs);
    this.#caller = options.signal;
    this.#client = options.client;
    // Already gone (e.g. before a retry): undici then sends nothing.
    if (this.#caller?.aborted || this.#client?.destroyed) {
      this.#onCancel();
      return;
    }
    this.#caller?.addEventListener("abort", this.#onCancel, { once: true });
    this.#client?.once("close", this.#onCancel);
  }

  stopTimer(): void {
    clearTimeout(this.#timer);
  }

  release(): void {
    clearTimeout(this.#timer);
    this.#caller?.removeEventListener("abort", this.#onCancel);
    this.#client?.removeListener("close", this.#onCancel);
  }

  #abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.emit("abort");
  }
}
