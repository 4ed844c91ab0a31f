/** Runs an attempt again while the retry policy says so, sleeping its delays. */
import { setTimeout as sleep } from "node:timers/promises";
import { failureKind } from "./failures.js";
import { type RetryPolicy, retryDelay } from "./retry-policy.js";

export type Retrying = <T>(attempt: () => Promise<T>) => Promise<T>;

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
  if (policy.attempts === 0) return (attempt) => attempt();
  return async (attempt) => {
    const start = clock.now();
    for (let n = 1; ; n++) {
      try {
        return await attempt();
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
