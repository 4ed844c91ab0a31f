import t from "tap";
import { countsAgainstBreaker, failureKind } from "../../../src/backends/resilience/failures.js";
import { compileRetry } from "../../../src/backends/resilience/retry.js";
import {
  type AttemptFacts,
  overallDeadlineMs,
  type RetryPolicy,
  retryDelay,
} from "../../../src/backends/resilience/retry-policy.js";
import { TurnoutError } from "../../../src/errors.js";

const policy: RetryPolicy = { attempts: 3, backoffMs: 100, timeoutMs: 1000, idempotent: true };
const facts = (over: Partial<AttemptFacts> = {}): AttemptFacts => ({
  attempt: 1,
  failure: "unreached",
  elapsedMs: 0,
  random: 0.5,
  ...over,
});

t.test("a failure that never reached a worker is retried, even on a POST", async (t) => {
  t.equal(retryDelay({ ...policy, idempotent: false }, facts()), 50);
  t.equal(retryDelay(policy, facts()), 50);
});

t.test("a timeout is retried only on an idempotent route", async (t) => {
  t.equal(retryDelay(policy, facts({ failure: "timeout" })), 50);
  t.equal(retryDelay({ ...policy, idempotent: false }, facts({ failure: "timeout" })), undefined);
});

t.test("an answered failure is never retried", async (t) => {
  t.equal(retryDelay(policy, facts({ failure: "answered" })), undefined);
});

t.test("no more than `attempts` extra attempts", async (t) => {
  t.not(retryDelay(policy, facts({ attempt: 3 })), undefined, "the third retry is allowed");
  t.equal(retryDelay(policy, facts({ attempt: 4 })), undefined, "a fourth is not");
  t.equal(retryDelay({ ...policy, attempts: 0 }, facts()), undefined, "0 disables retries");
});

t.test("the backoff doubles each attempt with full jitter below its ceiling", async (t) => {
  t.equal(retryDelay(policy, facts({ attempt: 1, random: 0.999 })), 99);
  t.equal(retryDelay(policy, facts({ attempt: 2, random: 0.999 })), 199);
  t.equal(retryDelay(policy, facts({ attempt: 3, random: 0.999 })), 399);
  t.equal(retryDelay(policy, facts({ attempt: 3, random: 0 })), 0, "jitter reaches down to 0");
  t.equal(retryDelay(policy, facts({ attempt: 3, random: 0.25 })), 100);
});

t.test("no retry when its backoff would pass the overall deadline", async (t) => {
  t.equal(overallDeadlineMs(policy), 4000, "(1 + attempts) * timeout");
  t.equal(retryDelay(policy, facts({ elapsedMs: 3949 })), 50, "ends just before the deadline");
  t.equal(retryDelay(policy, facts({ elapsedMs: 3950 })), undefined, "would reach it");
});

t.test("failures are sorted by whether they reached a worker", async (t) => {
  t.equal(failureKind(new TurnoutError("TURNOUT_ERR_NO_RESPONDERS", "x")), "unreached");
  t.equal(failureKind(new TurnoutError("TURNOUT_ERR_NOT_CONNECTED", "x")), "unreached");
  t.equal(failureKind(new TurnoutError("TURNOUT_ERR_UPSTREAM_REFUSED", "x")), "unreached");
  t.equal(failureKind(new TurnoutError("TURNOUT_ERR_TIMEOUT", "x")), "timeout");
  t.equal(failureKind(new TurnoutError("TURNOUT_ERR_WORKER", "x", { status: 500 })), "answered");
  t.equal(failureKind(new Error("bug")), "answered");
});

t.test(
  "timeouts, 5xx and a down legacy upstream count against the breaker; 4xx and unreached workers do not",
  async (t) => {
    t.ok(countsAgainstBreaker(new TurnoutError("TURNOUT_ERR_TIMEOUT", "x")));
    t.ok(countsAgainstBreaker(new TurnoutError("TURNOUT_ERR_WORKER", "x", { status: 500 })));
    t.ok(countsAgainstBreaker(new TurnoutError("TURNOUT_ERR_BAD_REPLY", "x")));
    t.notOk(countsAgainstBreaker(new TurnoutError("TURNOUT_ERR_WORKER", "x", { status: 404 })));
    t.notOk(countsAgainstBreaker(new TurnoutError("TURNOUT_ERR_BAD_JSON", "x")));
    t.notOk(countsAgainstBreaker(new TurnoutError("TURNOUT_ERR_NO_RESPONDERS", "x")));
    t.notOk(countsAgainstBreaker(new TurnoutError("TURNOUT_ERR_NOT_CONNECTED", "x")));
    t.ok(
      countsAgainstBreaker(new TurnoutError("TURNOUT_ERR_UPSTREAM_REFUSED", "x", { status: 503 })),
    );
    t.ok(countsAgainstBreaker(new TurnoutError("TURNOUT_ERR_UPSTREAM_DNS", "x", { status: 502 })));
  },
);

t.test(
  "compileRetry sleeps the policy's delays until an attempt succeeds, counting each retry",
  async (t) => {
    const slept: number[] = [];
    const clock = { now: () => 0, random: () => 0.5, sleep: async (ms: number) => slept.push(ms) };
    let calls = 0;
    let retries = 0;
    const retrying = compileRetry(policy, () => retries++, clock);
    const result = await retrying(async () => {
      calls++;
      if (calls < 3) throw new TurnoutError("TURNOUT_ERR_NO_RESPONDERS", "none yet");
      return "ok";
    });
    t.equal(result, "ok");
    t.equal(calls, 3);
    t.same(slept, [50, 100]);
    t.equal(retries, 2, "onRetry heard each retry");
  },
);

t.test("compileRetry gives up with the last error once the policy says no", async (t) => {
  const clock = { now: () => 0, random: () => 0, sleep: async () => {} };
  let calls = 0;
  let retries = 0;
  const retrying = compileRetry({ ...policy, idempotent: false }, () => retries++, clock);
  await t.rejects(
    retrying(async () => {
      calls++;
      throw new TurnoutError("TURNOUT_ERR_TIMEOUT", `timeout ${calls}`);
    }),
    { code: "TURNOUT_ERR_TIMEOUT", message: "timeout 1" },
  );
  t.equal(calls, 1, "a timeout on a non-idempotent route is tried once");
  t.equal(retries, 0, "and counted as no retry");
});

t.test(
  "a retry that starts late gets only what is left of the overall deadline as its timeout",
  async (t) => {
    let now = 0;
    const clock = { now: () => now, random: () => 0.5, sleep: async (ms: number) => (now += ms) };
    const timeouts: number[] = [];
    const retrying = compileRetry({ ...policy, attempts: 2 }, undefined, clock); // deadline 3000 ms
    await t.rejects(
      retrying(async (timeoutMs) => {
        timeouts.push(timeoutMs);
        now += timeouts.length === 1 ? 2500 : timeoutMs; // slow to fail, then a whole timeout
        throw new TurnoutError("TURNOUT_ERR_NO_RESPONDERS", "none");
      }),
      { code: "TURNOUT_ERR_NO_RESPONDERS" },
    );
    t.same(timeouts, [1000, 450], "2500 + 50 ms of backoff leave 450 of the 3000 ms");
    t.equal(now, 3000, "the request ended at its overall deadline, not past it");
  },
);
