import { setTimeout as sleep } from "node:timers/promises";
import t from "tap";
import { type BreakerState, createBreaker } from "../../../src/backends/resilience/breaker.js";
import { TurnoutError } from "../../../src/errors.js";

const options = { errorPercent: 50, volume: 4, resetAfterMs: 100 };
const isServerError = (answer: { status: number }) => answer.status >= 500;

t.test("5xx answers open the breaker; they are still returned as answers", async (t) => {
  const states: BreakerState[] = [];
  const breaker = createBreaker("r/nats", options, (s) => states.push(s));
  for (let i = 0; i < 4; i++) {
    const answer = await breaker.run(async () => ({ status: 500 }), isServerError);
    t.equal(answer.status, 500);
  }
  t.equal(breaker.state, "open");
  t.same(states, ["closed", "open"]);
  let called = false;
  await t.rejects(
    breaker.run(async () => {
      called = true;
      return { status: 200 };
    }, isServerError),
    { code: "TURNOUT_ERR_BREAKER_OPEN", status: 503 },
  );
  t.notOk(called, "an open breaker does not run the action");
});

t.test("after resetAfter one success closes the breaker again", async (t) => {
  const states: BreakerState[] = [];
  const breaker = createBreaker("r/nats", options, (s) => states.push(s));
  for (let i = 0; i < 4; i++) {
    await t.rejects(
      breaker.run(async () => {
        throw new TurnoutError("TURNOUT_ERR_TIMEOUT", "slow");
      }, isServerError),
      { code: "TURNOUT_ERR_TIMEOUT" },
    );
  }
  t.equal(breaker.state, "open", "timeouts count");
  await sleep(150);
  t.equal(breaker.state, "halfOpen");
  const answer = await breaker.run(async () => ({ status: 200 }), isServerError);
  t.equal(answer.status, 200);
  t.equal(breaker.state, "closed");
  t.same(states, ["closed", "open", "halfOpen", "closed"]);
});

t.test(
  "a half-open probe that never reached the backend keeps it open; the backend's own 4xx closes it",
  async (t) => {
    const breaker = createBreaker("r/legacy", options);
    const fail = async () => {
      throw new TurnoutError("TURNOUT_ERR_TIMEOUT", "slow");
    };
    for (let i = 0; i < 4; i++) await t.rejects(breaker.run(fail, isServerError));
    t.equal(breaker.state, "open");
    const unreached = [
      new TurnoutError("TURNOUT_ERR_UPSTREAM_FAILED", "client left", { status: 499 }),
      new TurnoutError("TURNOUT_ERR_NO_RESPONDERS", "no worker"),
      new TurnoutError("TURNOUT_ERR_BAD_FIELD", "refused before any call"),
    ];
    for (const error of unreached) {
      await sleep(options.resetAfterMs + 20);
      t.equal(breaker.state, "halfOpen");
      await t.rejects(
        breaker.run(async () => {
          throw error;
        }, isServerError),
        { code: error.code },
      );
      t.equal(breaker.state, "open", `${error.code} (${error.status}) proved nothing: still open`);
    }
    await sleep(options.resetAfterMs + 20);
    const notFound = new TurnoutError("TURNOUT_ERR_WORKER", "no such user", { status: 404 });
    await t.rejects(
      breaker.run(async () => {
        throw notFound;
      }, isServerError),
      { code: "TURNOUT_ERR_WORKER" },
    );
    t.equal(breaker.state, "closed", "the worker answered: it is back");
  },
);

t.test(
  "a breaker that closes forgets its window: the calls it refused are no successes, the old failures no failures",
  async (t) => {
    const opened = async (breaker: ReturnType<typeof createBreaker>) => {
      for (let i = 0; i < 4; i++) await breaker.run(async () => ({ status: 500 }), isServerError);
      t.equal(breaker.state, "open");
    };
    const closeAfterReset = async (breaker: ReturnType<typeof createBreaker>) => {
      await sleep(options.resetAfterMs + 30);
      await breaker.run(async () => ({ status: 200 }), isServerError);
      t.equal(breaker.state, "closed");
    };

    const refusedMany = createBreaker("r/nats", options);
    await opened(refusedMany);
    for (let i = 0; i < 100; i++) {
      await refusedMany.run(async () => ({ status: 200 }), isServerError).catch(() => {});
    }
    await closeAfterReset(refusedMany);
    let reached = 0;
    for (let i = 0; i < 20 && refusedMany.state === "closed"; i++) {
      reached++;
      await refusedMany.run(async () => ({ status: 500 }), isServerError);
    }
    t.equal(reached, 4, "still failing: open again after `volume` failures, not 100 later");

    // 20 failures in flight at once, all let through while it was still closed.
    const fewFailures = createBreaker("r/nats", options);
    const failing = async () => {
      await sleep(5);
      return { status: 500 };
    };
    await Promise.all(Array.from({ length: 20 }, () => fewFailures.run(failing, isServerError)));
    t.equal(fewFailures.state, "open");
    await closeAfterReset(fewFailures);
    for (let i = 0; i < 9; i++) await fewFailures.run(async () => ({ status: 200 }), isServerError);
    await fewFailures.run(async () => ({ status: 500 }), isServerError);
    t.equal(fewFailures.state, "closed", "1 failure in 10 after the close stays under 50%");
  },
);

t.test("4xx answers and errors, and unreached workers, never open it", async (t) => {
  const breaker = createBreaker("r/nats", options);
  for (let i = 0; i < 5; i++) {
    await breaker.run(async () => ({ status: 404 }), isServerError);
    await t.rejects(
      breaker.run(async () => {
        throw new TurnoutError("TURNOUT_ERR_WORKER", "gone", { status: 410 });
      }, isServerError),
    );
    await t.rejects(
      breaker.run(async () => {
        throw new TurnoutError("TURNOUT_ERR_NO_RESPONDERS", "none");
      }, isServerError),
    );
  }
  t.equal(breaker.state, "closed");
});

t.test("a failure after many successes sorts no latency window", async (t) => {
  const breaker = createBreaker("r/nats", { ...options, volume: 1000 });
  for (let i = 0; i < 5000; i++) await breaker.run(async () => ({ status: 200 }), isServerError);
  const sorted: number[] = [];
  const sort = Array.prototype.sort;
  Array.prototype.sort = function (this: unknown[], compare?: (a: unknown, b: unknown) => number) {
    sorted.push(this.length);
    return sort.call(this, compare);
  };
  try {
    const answer = await breaker.run(async () => ({ status: 503 }), isServerError);
    t.equal(answer.status, 503);
  } finally {
    Array.prototype.sort = sort;
  }
  t.same(
    sorted.filter((length) => length >= 5000),
    [],
    "opossum's per-call latency list is off: deciding on a failure costs the same whatever the traffic",
  );
  t.equal(breaker.state, "closed", "1 failure in 5001 calls keeps it closed");
});
