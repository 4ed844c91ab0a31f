/**
 * The one place that turns a failure of the legacy transport (undici, node:net,
 * DNS, aborts) into a coded TurnoutError with its HTTP status, as
 * @fastify/reply-from does; the original error is always kept as `cause`.
 */
import { type ErrorCode, TurnoutError } from "../../errors.js";

type Kind = "refused" | "dns" | "reset" | "timeout" | "bad" | "closed";

const KIND_BY_CODE = new Map<string, Kind>([
  ["ECONNREFUSED", "refused"],
  ["EHOSTUNREACH", "refused"],
  ["ENETUNREACH", "refused"],
  // The TCP handshake never completed, so the request was never sent either.
  ["UND_ERR_CONNECT_TIMEOUT", "refused"],
  ["ENOTFOUND", "dns"],
  ["EAI_AGAIN", "dns"],
  ["ECONNRESET", "reset"],
  ["EPIPE", "reset"],
  ["UND_ERR_SOCKET", "reset"],
  ["UND_ERR_HEADERS_TIMEOUT", "timeout"],
  ["UND_ERR_BODY_TIMEOUT", "timeout"],
  ["UND_ERR_HEADERS_OVERFLOW", "bad"],
  ["UND_ERR_RES_CONTENT_LENGTH_MISMATCH", "bad"],
  // Only our own close() closes a pool: the gateway is draining.
  ["UND_ERR_CLOSED", "closed"],
  ["UND_ERR_DESTROYED", "closed"],
]);

const ANSWERS: Record<Kind, [ErrorCode, string]> = {
  refused: ["TURNOUT_ERR_UPSTREAM_REFUSED", "the legacy upstream did not accept the connection"],
  dns: ["TURNOUT_ERR_UPSTREAM_DNS", "the legacy upstream's host name did not resolve"],
  reset: ["TURNOUT_ERR_UPSTREAM_RESET", "the legacy upstream closed the connection mid-exchange"],
  timeout: ["TURNOUT_ERR_UPSTREAM_TIMEOUT", "the legacy upstream did not answer in time"],
  bad: ["TURNOUT_ERR_UPSTREAM_BAD", "the legacy upstream's answer is not valid HTTP"],
  closed: ["TURNOUT_ERR_DRAINING", "the legacy upstreams are closed for the drain"],
};

const FAILED: [ErrorCode, string] = ["TURNOUT_ERR_UPSTREAM_FAILED", "the legacy upstream failed"];

/** Maps any error of a legacy exchange to a TurnoutError; TurnoutErrors pass unchanged. */
export function upstreamFailure(error: unknown): TurnoutError {
  if (error instanceof TurnoutError) return error;
  const kind = kindOf(error);
  const [code, message] = kind === undefined ? FAILED : ANSWERS[kind];
  return new TurnoutError(code, `${message} (${describe(error)})`, { cause: error });
}

/**
 * True when the request certainly never reached the upstream (connection refused,
 * DNS failure): retrying it, on legacy or NATS, cannot run a write twice.
 */
export function neverReachedUpstream(error: unknown): boolean {
  const code = upstreamFailure(error).code;
  return code === "TURNOUT_ERR_UPSTREAM_REFUSED" || code === "TURNOUT_ERR_UPSTREAM_DNS";
}

/** A route timeout is a "TimeoutError" abort reason (ours, or a caller's AbortSignal.timeout()). */
export function deadlineError(timeoutMs: number): DOMException {
  return new DOMException(`no answer within ${timeoutMs} ms`, "TimeoutError");
}

/**
 * The client went away before the legacy answer was done: the exchange is
 * cancelled, as nobody would read it. Logged and counted with nginx's 499
 * ("client closed request"): not the upstream's failure, so neither retried
 * nor counted by the breaker, and no 5xx on the dashboards.
 */
export function clientGone(): TurnoutError {
  return new TurnoutError(
    "TURNOUT_ERR_UPSTREAM_FAILED",
    "the client closed the connection before the legacy answer; the forward was cancelled",
    { status: CLIENT_CLOSED_REQUEST },
  );
}

const CLIENT_CLOSED_REQUEST = 499;

function kindOf(error: unknown): Kind | undefined {
  const name = (error as { name?: unknown } | null)?.name;
  if (name === "TimeoutError") return "timeout";
  // llhttp's parse errors have no stable `code` in undici 7, only this name.
  if (name === "HTTPParserError") return "bad";
  const code = codeOf(error);
  return code === undefined ? undefined : KIND_BY_CODE.get(code);
}

/** Node's happy-eyeballs connect can fail with an AggregateError: its first error tells. */
function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === "string") return code;
  if (error instanceof AggregateError) return codeOf(error.errors[0]);
  return undefined;
}

function describe(error: unknown): string {
  return codeOf(error) ?? (error instanceof Error ? error.name : String(error));
}
