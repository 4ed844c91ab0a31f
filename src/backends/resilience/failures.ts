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
 * True when an error says the backend is unwell: a timeout or a 5xx it caused.
 * A 4xx is the client's fault, and a request that reached no one says nothing
 * about the workers' health (the fallback or the retry handles it); neither
 * counts. Errors that are not ours (a bug) count, as they may repeat.
 */
export function countsAgainstBreaker(error: unknown): boolean {
  if (!(error instanceof TurnoutError)) return true;
  if (error.code === "TURNOUT_ERR_DRAINING") return false;
  const kind = failureKind(error);
  if (kind === "unreached") return false;
  return kind === "timeout" || error.status >= 500;
}
