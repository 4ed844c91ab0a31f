/** Runs an attempt again while the retry policy says so, sleeping its delays. */
import { setTimeout as sleep } from "node:timers/promises";
import { failureKind } from "./failures.js";
import { overallDeadlineMs, type RetryPolicy, retryDelay } from "./retry-policy.js";

/**
 * Runs `attempt` until it succeeds or the policy says stop. Each attempt gets its
 * timeout in ms: the route's, or what is left of the overall deadline when less,
 * so a retry that starts late cannot carry the request past that deadline (which
 * operators size the drain grace by).
 */
export type Retrying = <T>(attempt: (timeoutMs: number) => Promise<T>) => Promise<T>;

export interface RetryClock {
  readonly now: () => number;
  readonly random: () => number;
  readonly sleep: (ms: number) => Promise<unknown>;
}

const REAL_CLOCK: RetryClock = {
  now: performance.now.bind(performance),
  random: Math.random,
  sleep,
};

const noRetryCount = (): void => {};

/**
 * Compiles `policy` once; with no extra attempts the attempt simply runs.
 * `onRetry` hears each retry as it is decided (`turnout_retries_total`).
 */
export function compileRetry(
  policy: RetryPolicy,
  onRetry: () => void = noRetryCount,
  clock: RetryClock = REAL_CLOCK,
): Retrying {
  if (policy.attempts === 0) return (attempt) => attempt(policy.timeoutMs);
  const deadlineMs = overallDeadlineMs(policy);
  return async (attempt) => {
    const start = clock.now();
    for (let n = 1; ; n++) {
      const left = deadlineMs - (clock.now() - start);
      try {
        // At least 1 ms: retryDelay starts no retry at or past the deadline.
        return await attempt(Math.max(1, Math.min(policy.timeoutMs, Math.ceil(left))));
      } catch (error) {
        const delay = retryDelay(policy, {
          attempt: n,
          failure: failureKind(error),
          elapsedMs: clock.now() - start,
          random: clock.random(),
        });
        if (delay === undefined) throw error;
        onRetry();
        await clock.sleep(delay);
      }
    }
  };
}
