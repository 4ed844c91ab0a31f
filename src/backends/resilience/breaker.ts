/**
 * A circuit breaker per route and backend, behind a small interface so the
 * request path only calls `run`. opossum keeps the rolling window; its own
 * timeout is off: each call carries its own deadline (the NATS requester's
 * timer, the legacy forward's abort), so no breaker-wide AbortController ever
 * cancels another request.
 */
import CircuitBreaker from "opossum";
import type { BreakerOptions } from "../../config/types.js";
import { TurnoutError } from "../../errors.js";
import { countsAgainstBreaker } from "./failures.js";

export type BreakerState = "closed" | "halfOpen" | "open";

export interface Breaker {
  /**
   * Runs `action` unless the breaker is open (then rejects at once with
   * TURNOUT_ERR_BREAKER_OPEN). `failed` marks an answer that counts as a
   * failure (a 5xx answer): it is still returned to the caller.
   */
  run<T>(action: () => Promise<T>, failed: (answer: T) => boolean): Promise<T>;
  readonly state: BreakerState;
}

/** A 5xx answer counts against the breaker; a 4xx is the client's own doing. */
export const isServerError = (answer: { readonly status: number }): boolean => answer.status >= 500;

/** For a backend a route does not have: runs every action, counts nothing. */
export const NO_BREAKER: Breaker = {
  state: "closed",
  run: (action) => action(),
};

/** An answer that counted as a failure, carried through opossum's rejection path. */
class FailedAnswer {
  constructor(readonly answer: unknown) {}
}

type Action = () => Promise<unknown>;

/** An error that is the backend's own answer (a worker's 4xx, a body over the mirror's cap). */
function isBackendAnswer(error: unknown): boolean {
  return (
    error instanceof TurnoutError &&
    (error.code === "TURNOUT_ERR_WORKER" || error.code === "TURNOUT_ERR_UPSTREAM_TOO_LARGE")
  );
}

/**
 * A breaker that closes starts a fresh window. opossum keeps the old one: the
 * failures that opened it would reopen it at the next few errors (10% errors
 * tripped a 50% breaker), and the calls it refused while open count as
 * successful calls, so a backend still broken after the probe got hundreds
 * of requests before it opened again. The buckets are zeroed in place (the
 * window array is a copy; its buckets are opossum's own).
 */
function forgetWindow(circuit: CircuitBreaker): void {
  for (const bucket of circuit.status.window as unknown as Record<string, unknown>[]) {
    for (const [key, value] of Object.entries(bucket))
      if (typeof value === "number") bucket[key] = 0;
  }
}

export function createBreaker(
  name: string,
  options: BreakerOptions,
  onState: (state: BreakerState) => void = () => {},
): Breaker {
  const circuit: CircuitBreaker = new CircuitBreaker((action: Action) => action(), {
    name,
    timeout: false,
    errorThresholdPercentage: options.errorPercent,
    volumeThreshold: options.volume,
    resetTimeout: options.resetAfterMs,
    enableSnapshots: false,
    // opossum otherwise keeps every call's latency for the window and, on each
    // failure, concatenates and sorts them all to decide whether to open: with
    // 100k calls in the window that was 12 ms of CPU per failure, so a backend
    // starting to fail would have stalled the gateway. Nothing here reads them.
    rollingPercentilesEnabled: false,
    errorFilter: (error: unknown): boolean => {
      if (error instanceof FailedAnswer || countsAgainstBreaker(error)) return false;
      // opossum takes a filtered error as a success, and a successful half-open
      // probe closes the breaker. A probe that never reached the backend (its
      // client left, no worker listened, the gateway refused it) proved nothing:
      // it must keep the breaker open, or all traffic would flood a backend
      // still broken. Only an answer from the backend closes it.
      return !circuit.halfOpen || isBackendAnswer(error);
    },
  });
  circuit.on("open", () => onState("open"));
  circuit.on("halfOpen", () => onState("halfOpen"));
  circuit.on("close", () => {
    forgetWindow(circuit);
    onState("closed");
  });
  onState("closed");

  return {
    get state(): BreakerState {
      if (circuit.opened) return "open";
      return circuit.halfOpen ? "halfOpen" : "closed";
    },
    async run<T>(action: () => Promise<T>, failed: (answer: T) => boolean): Promise<T> {
      const counted = async () => {
        const answer = await action();
        if (failed(answer)) throw new FailedAnswer(answer);
        return answer;
      };
      try {
        return (await circuit.fire(counted)) as T;
      } catch (error) {
        if (error instanceof FailedAnswer) return error.answer as T;
        if ((error as { code?: unknown }).code === "EOPENBREAKER") {
          throw new TurnoutError("TURNOUT_ERR_BREAKER_OPEN", `${name}: circuit breaker open`, {
            cause: error,
          });
        }
        throw error;
      }
    },
  };
}
