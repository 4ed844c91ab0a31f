/**
 * One exchange with a legacy upstream over its undici Pool. The answer's shape
 * is what a Fastify reply takes as is:
 * `reply.code(a.status).headers(a.headers).send(a.body)`.
 * Every failure is thrown as a TurnoutError mapped by failures.ts.
 */
import { EventEmitter } from "node:events";
import type { Readable } from "node:stream";
import type { Dispatcher, Pool } from "undici";
import { TurnoutError } from "../../errors.js";
import { deadlineError, upstreamFailure } from "./failures.js";
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
  /** Cancels the exchange (e.g. the client went away); its reason becomes the `cause`. */
  readonly signal?: AbortSignal;
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
): Promise<LegacyAnswer<Readable | Buffer>> {
  const abort = new RequestAbort(timeoutMs, options.signal);
  try {
    const response = await target.pool.request({
      method: request.method as Dispatcher.HttpMethod,
      path: target.prefix + request.url,
      headers: requestHeaders(request, target.host),
      body: request.body ?? null,
      signal: abort,
      bodyTimeout: timeoutMs,
    });
    checkStatus(response);
    const headers = responseHeaders(response.headers);
    if (options.mode === "relay" && !declaresAtMost(headers, RELAY_WHOLE_MAX_BYTES)) {
      abort.stopTimer();
      // A caller's cancel still applies to the body, until the body is done.
      response.body.once("close", () => abort.release());
      return { status: response.statusCode, headers, body: response.body };
    }
    const cap = options.mode === "relay" ? RELAY_WHOLE_MAX_BYTES : options.maxBodyBytes;
    const body = await collect(response.body, headers, cap);
    abort.release();
    return { status: response.statusCode, headers, body };
  } catch (error) {
    abort.release();
    throw upstreamFailure(error);
  }
}

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
 * The signal undici watches, aborted by the route deadline or by the caller's
 * signal. undici takes an EventEmitter as a signal: an AbortController and its
 * EventTarget listeners per request were about 4% of the gateway's CPU on the
 * legacy path.
 */
class RequestAbort extends EventEmitter {
  aborted = false;
  reason: unknown = undefined;
  readonly #timer: NodeJS.Timeout;
  readonly #caller: AbortSignal | undefined;
  readonly #onCallerAbort = () => this.#abort(this.#caller?.reason);

  constructor(timeoutMs: number, caller: AbortSignal | undefined) {
    super();
    this.#timer = setTimeout(() => this.#abort(deadlineError(timeoutMs)), timeoutMs);
    this.#caller = caller;
    if (caller?.aborted) this.#onCallerAbort();
    else caller?.addEventListener("abort", this.#onCallerAbort, { once: true });
  }

  stopTimer(): void {
    clearTimeout(this.#timer);
  }

  release(): void {
    clearTimeout(this.#timer);
    this.#caller?.removeEventListener("abort", this.#onCallerAbort);
  }

  #abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.emit("abort");
  }
}
