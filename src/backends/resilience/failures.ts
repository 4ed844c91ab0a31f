/**
 * How a failed attempt ended, for the retry policy and the breaker: whether it
 * provably never reached a worker (or upstream), timed out, or was answered.
 */
import { TurnoutError } from "../../errors.js";

export type FailureKind = "unreached" | "timeout" | "answered";

/** The request was never sent to anyone: NATS had no subscriber, or no connection. */
const UNREACHED = new Set<string>([
  "TURNOUT_ERR_NO_RESPONDERS",
  "TURNOUT_ERR_NOT_CONNECTED",
  "TURNOUT_ERR_UPSTREAM_REFUSED",
  "TURNOUT_ERR_UPSTREAM_DNS",
]);

const TIMEOUTS = new Set<string>(["TURNOUT_ERR_TIMEOUT", "TURNOUT_ERR_UPSTREAM_TIMEOUT"]);

export function failureKind(error: unknown): FailureKind {
  if (!(error instanceof TurnoutError)) return "answered";
  if (UNREACHED.has(error.code)) return "unreached";
  if (TIMEOUTS.has(error.code)) return "timeout";
  return "answered";
}

/**
 * A legacy upstream that refuses connections, or whose name does not resolve,
 * is down. Each attempt at it still costs the gateway a connect (about 160 µs
 * of CPU through undici, several times that with retries). An open breaker
 * refuses in a few µs instead, and its half-open probe spares an upstream
 * that comes back a reconnect storm.
 */
const UPSTREAM_DOWN = new Set<string>(["TURNOUT_ERR_UPSTREAM_REFUSED", "TURNOUT_ERR_UPSTREAM_DNS"]);

/**
 * True when an error says the backend is unwell: a timeout, a 5xx it caused,
 * or a legacy upstream that is down (UPSTREAM_DOWN). A 4xx is the client's
 * fault, and a NATS request that reached no worker says nothing about the
 * workers' health (NATS says so at once; the fallback or the retry handles
 * it); neither counts, nor does a body over the gateway's cap. Errors that are not ours (a bug) count, as they may repeat.
 */
export function countsAgainstBreaker(error: unknown): boolean {
  if (!(error instanceof TurnoutError)) return true;
  // The gateway's own refusal: the upstream answered, only more than a mirror reads.
  if (error.code === "TURNOUT_ERR_DRAINING" || error.code === "TURNOUT_ERR_UPSTREAM_TOO_LARGE") {
    return false;
  }
  if (UPSTREAM_DOWN.has(error.code)) return true;
  const kind = failureKind(error);
  if (kind === "unreached") return false;
  return kind === "timeout" || error.status >= 500;
}
