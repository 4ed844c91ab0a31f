/**
 * Every error Turnout raises, coded in one place (TURNOUT_ERR_*). Each code carries
 * the HTTP status it maps to and a message template; `toProblem` in
 * server/problem.ts is the one function that turns any error into an HTTP answer.
 */

export const ErrorCodes = {
  /** The route table or a flag is invalid; raised at start with every problem. */
  TURNOUT_ERR_CONFIG: { status: 500, title: "Invalid configuration" },
  /** A listener could not take its port (in use, not permitted); raised at start. */
  TURNOUT_ERR_LISTEN: { status: 500, title: "Cannot listen" },
  /** The request body is not JSON, or JSON that doesn't fit the request type. */
  TURNOUT_ERR_BAD_JSON: { status: 400, title: "Invalid request body" },
  /** A field's value is wrong (type, range, enum, base64, timestamp, oneof...). */
  TURNOUT_ERR_BAD_FIELD: { status: 400, title: "Invalid field value" },
  /** A path or query parameter is not a valid value for its field. */
  TURNOUT_ERR_BAD_PARAM: { status: 400, title: "Invalid parameter" },
  /** A subject template parameter is not a safe NATS token. */
  TURNOUT_ERR_BAD_SUBJECT_TOKEN: { status: 400, title: "Invalid subject parameter" },
  /** Node could not read the request at all (request line, header syntax); the connection is closed. */
  TURNOUT_ERR_MALFORMED_REQUEST: { status: 400, title: "Malformed HTTP request" },
  /** The request's headers are over the listener's limit (16 KiB); the connection is closed. */
  TURNOUT_ERR_HEADERS_TOO_LARGE: { status: 431, title: "Request headers too large" },
  /** The client did not send its whole request within the listener's requestTimeoutMs. */
  TURNOUT_ERR_REQUEST_TIMEOUT: { status: 408, title: "Request timeout" },
  /** The request body is larger than the route's bodyLimit. */
  TURNOUT_ERR_BODY_TOO_LARGE: { status: 413, title: "Request body too large" },
  /** The request body has a content type other than JSON. */
  TURNOUT_ERR_UNSUPPORTED_MEDIA_TYPE: { status: 415, title: "Unsupported media type" },
  /** No route matches the method and path. */
  TURNOUT_ERR_NOT_FOUND: { status: 404, title: "Not found" },
  /** The path exists with another method. */
  TURNOUT_ERR_METHOD_NOT_ALLOWED: { status: 405, title: "Method not allowed" },
  /** No NATS worker listens on the subject: known at once, never after a timeout. */
  TURNOUT_ERR_NO_RESPONDERS: { status: 503, title: "No worker available" },
  /** The gateway is not connected to NATS right now. */
  TURNOUT_ERR_NOT_CONNECTED: { status: 503, title: "Not connected to NATS" },
  /** The worker did not answer within the route's timeout. */
  TURNOUT_ERR_TIMEOUT: { status: 504, title: "Worker timed out" },
  /** The worker's reply could not be decoded as the route's response type. */
  TURNOUT_ERR_BAD_REPLY: { status: 502, title: "Undecodable worker reply" },
  /** The worker signalled an error with Nats-Service-Error-Code. */
  TURNOUT_ERR_WORKER: { status: 502, title: "Worker error" },
  /** The gateway is shutting down and takes no new requests. */
  TURNOUT_ERR_DRAINING: { status: 503, title: "Shutting down" },
  /** `/admin` without a configured TURNOUT_ADMIN_TOKEN: locked by default. */
  TURNOUT_ERR_ADMIN_LOCKED: { status: 403, title: "Admin API locked" },
  /** `/admin` with a missing or wrong bearer token. */
  TURNOUT_ERR_UNAUTHORIZED: { status: 401, title: "Unauthorized" },
  /** Anything unexpected: a bug, reported as 500 with the cause kept. */
  TURNOUT_ERR_INTERNAL: { status: 500, title: "Internal error" },
  /** The legacy upstream refused the connection or did not accept it in time: nothing was sent. */
  TURNOUT_ERR_UPSTREAM_REFUSED: { status: 503, title: "Legacy upstream unreachable" },
  /** The legacy upstream's host name did not resolve: nothing was sent. */
  TURNOUT_ERR_UPSTREAM_DNS: { status: 503, title: "Legacy upstream name not resolved" },
  /** The legacy upstream closed or reset the connection before its answer was complete. */
  TURNOUT_ERR_UPSTREAM_RESET: { status: 502, title: "Legacy upstream connection reset" },
  /** The legacy upstream sent no headers, or no next body chunk, within the route's timeout. */
  TURNOUT_ERR_UPSTREAM_TIMEOUT: { status: 504, title: "Legacy upstream timed out" },
  /** The legacy upstream's answer is not valid HTTP (status out of range, malformed head). */
  TURNOUT_ERR_UPSTREAM_BAD: { status: 502, title: "Invalid legacy upstream answer" },
  /** A buffered read (for the shadow comparison) met a body larger than its cap. */
  TURNOUT_ERR_UPSTREAM_TOO_LARGE: { status: 502, title: "Legacy upstream answer too large" },
  /** Any other failure talking to the legacy upstream; the original error is the `cause`. */
  TURNOUT_ERR_UPSTREAM_FAILED: { status: 502, title: "Legacy upstream failed" },
  /** `--workers`: a scrape could not gather every worker's metrics (never a partial sum). */
  TURNOUT_ERR_METRICS_UNAVAILABLE: { status: 503, title: "Metrics unavailable" },
  /** The live cutover state is not available: no JetStream, or not loaded yet. */
  TURNOUT_ERR_CUTOVER_UNAVAILABLE: { status: 503, title: "Live cutover state unavailable" },
  /** A cutover change lost a race with another one, or there is nothing to roll back. */
  TURNOUT_ERR_CUTOVER_CONFLICT: { status: 409, title: "Cutover change conflict" },
  /** The client sent more requests than the route's `rateLimit` allows in its window. */
  TURNOUT_ERR_RATE_LIMITED: { status: 429, title: "Too many requests" },
  /** The route's circuit breaker for this backend is open: failing fast until it resets. */
  TURNOUT_ERR_BREAKER_OPEN: { status: 503, title: "Circuit breaker open" },
  /** An `Idempotency-Key` already stored a different request (IETF idempotency-key draft: 422). */
  TURNOUT_ERR_IDEMPOTENCY_KEY_REUSED: { status: 422, title: "Idempotency-Key reused" },
  /** A `mode: publish` route's subject is stored by no JetStream stream. */
  TURNOUT_ERR_NO_STREAM: { status: 503, title: "No stream for the subject" },
  /** A `mode: publish` route on a NATS server that runs without JetStream. */
  TURNOUT_ERR_NO_JETSTREAM: { status: 503, title: "JetStream not enabled" },
  /** A NATS or JetStream call failed for a reason no other code names (e.g. a dead letter's replay). */
  TURNOUT_ERR_NATS: { status: 502, title: "NATS call failed" },
  /** `turnout contract`: lines of the samples file that are not valid samples (every one listed). */
  TURNOUT_ERR_BAD_SAMPLES: { status: 400, title: "Invalid contract samples" },
  /** `turnout contract`: the samples file could not be read at all. */
  TURNOUT_ERR_SAMPLES_UNREADABLE: { status: 400, title: "Samples file unreadable" },
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

export interface TurnoutErrorOptions {
  /** Overrides the code's default status (e.g. a worker's own error code). */
  status?: number;
  /** The offending field or parameter, as a JSON path or parameter name. */
  field?: string;
  cause?: unknown;
}

export class TurnoutError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly field: string | undefined;

  constructor(code: ErrorCode, message: string, options: TurnoutErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "TurnoutError";
    this.code = code;
    this.status = options.status ?? ErrorCodes[code].status;
    this.field = options.field;
  }

  get title(): string {
    return ErrorCodes[this.code].title;
  }
}

/** One problem found in the route table: where it is and what is wrong. */
export interface ConfigProblem {
  /** file:line:column when known, else the file. */
  location: string;
  /** The route's name, when the problem is inside a route. */
  route?: string;
  /** Dotted key path, e.g. `routes[2].cutover.nats`. */
  key: string;
  message: string;
}

/** Raised once at start with every problem of the configuration. */
export class ConfigError extends TurnoutError {
  readonly problems: readonly ConfigProblem[];

  constructor(problems: readonly ConfigProblem[]) {
    super("TURNOUT_ERR_CONFIG", formatProblems(problems));
    this.name = "ConfigError";
    this.problems = problems;
  }
}

export function formatProblems(problems: readonly ConfigProblem[]): string {
  const lines = problems.map(formatProblemLine);
  return `${problems.length} problem(s) in the configuration:\n${lines.join("\n")}`;
}

/** `file:line:col route NAME key: message`, the route part only inside a route. */
export function formatProblemLine(problem: ConfigProblem): string {
  const route = problem.route === undefined ? "" : ` route ${problem.route}`;
  return `${problem.location}${route} ${problem.key}: ${problem.message}`;
}
