/**
 * The retry rule, as a pure function (Caddy's conservative `tryAgain`): a
 * failure that provably never reached a worker is always worth another try; a
 * timeout only on an idempotent route (the worker may have done the work); an
 * answered failure never. Delays grow exponentially with full jitter, and
 * no retry starts past the request's overall deadline.
 */
import type { FailureKind } from "./failures.js";

export interface RetryPolicy {
  /** Extra attempts after the first; 0 disables retries. */
  readonly attempts: number;
  /** Base of the exponential backoff, in ms. */
  readonly backoffMs: number;
  /** One attempt's timeout, in ms: the overall deadline is (1 + attempts) times it. */
  readonly timeoutMs: number;
  /** Whether a request that may have reached a worker can run twice. */
  readonly idempotent: boolean;
}

export interface AttemptFacts {
  /** Attempts made so far: 1 after the first one failed. */
  readonly attempt: number;
  readonly failure: FailureKind;
  /** Time since the first attempt began, in ms. */
  readonly elapsedMs: number;
  /** A number in [0, 1), the jitter (Math.random() in production). */
  readonly random: number;
}

/**
 * The overall deadline of a request under `policy`, in ms from its first attempt.
 * Within MAX_TIMER_MS for every loaded route (config/defaults.ts refuses more),
 * so it, and each retry delay (always below it), fits a Node timer.
 */
export function overallDeadlineMs(policy: RetryPolicy): number {
  return (policy.attempts + 1) * policy.timeoutMs;
}

/** The delay before the next attempt in ms, or undefined when the failure stands. */
export function retryDelay(policy: RetryPolicy, facts: AttemptFacts): number | undefined {
  if (facts.attempt > policy.attempts) return undefined;
  if (facts.failure === "answered") return undefined;
  if (facts.failure === "timeout" && !policy.idempotent) return undefined;
  // Full jitter: uniform in [0, base * 2^(n-1)), so clients that failed together spread out.
  const ceiling = policy.backoffMs * 2 ** (facts.attempt - 1);
  const delay = Math.floor(facts.random * ceiling);
  if (facts.elapsedMs + delay >= overallDeadlineMs(policy)) return undefined;
  return delay;
}
