import t from "tap";
import type { CutoverPlan } from "../../src/config/types.js";
import {
  emptyFigures,
  evaluatePlan,
  lastGoodStep,
  quantileMs,
  type WindowFigures,
} from "../../src/control/plan-evaluate.js";

const BOUNDS = [10, 50, 100, 500];
const plan: CutoverPlan = {
  steps: [1, 5, 25, 50, 100],
  everyMs: 300,
  gates: { maxErrorRate: 0.05, maxP99Ms: 100, maxMismatchRate: 0.02, minRequests: 100 },
};

/** `requests` answers, all in the 0-10 ms bucket unless `slow` of them took 100-500 ms. */
function figures(requests: number, more: Partial<WindowFigures> & { slow?: number } = {}) {
  const f = emptyFigures(BOUNDS.length);
  f.requests = requests;
  const slow = more.slow ?? 0;
  f.latency[0] = requests - slow;
  f.latency[3] = slow;
  return { ...f, ...more };
}

function decide(current: number, f: WindowFigures, start = 0) {
  return evaluatePlan({ plan, current, start, figures: f, boundsMs: BOUNDS });
}

t.test("healthy figures step up to the next step, with the figures in the reason", async (t) => {
  const d = decide(5, figures(200, { errors: 2, compared: 50, mismatches: 0 }));
  t.match(d, { kind: "step", to: 25, reason: /step 3\/5 5% -> 25%.*200 requests, errors 1\.00%/ });
  t.match(decide(50, figures(100)), { kind: "step", to: 100 });
});

t.test("from 0 the first step is taken without traffic to judge", async (t) => {
  t.match(decide(0, figures(0)), { kind: "step", to: 1, reason: /start at 1%/ });
});

t.test("too little traffic holds the step, even when every request was healthy", async (t) => {
  const d = decide(5, figures(99));
  t.match(d, { kind: "hold", reason: /too little traffic.*99 of 100 requests/ });
});

t.test("too little traffic holds even when the few requests all failed", async (t) => {
  t.match(decide(25, figures(10, { errors: 10 })), { kind: "hold" });
});

t.test("an error rate above the gate rolls back to the step before", async (t) => {
  const d = decide(25, figures(200, { errors: 11 }));
  t.match(d, {
    kind: "rollback",
    to: 5,
    reason: /^plan rollback: 25% -> 5%.*error rate 5\.50% > 5\.00% over 200/,
  });
  t.match(decide(25, figures(200, { errors: 10 })), { kind: "step" }, "exactly at the gate passes");
});

t.test("a p99 above the gate rolls back; one slow request in a hundred does not", async (t) => {
  t.match(decide(50, figures(200, { slow: 10 })), {
    kind: "rollback",
    to: 25,
    reason: /p99 .*> 100ms/,
  });
  t.match(decide(50, figures(200, { slow: 1 })), { kind: "step", to: 100 });
});

t.test("a shadow mismatch rate above the gate rolls back", async (t) => {
  const d = decide(5, figures(200, { compared: 100, mismatches: 3 }));
  t.match(d, { kind: "rollback", to: 1, reason: /mismatch rate 3\.00% > 2\.00% \(3 of 100\)/ });
});

t.test("a failure on the first step rolls back to the starting share, else to 0", async (t) => {
  t.match(decide(1, figures(200, { errors: 200 })), { kind: "rollback", to: 0 });
  t.equal(lastGoodStep([20, 50], 20, 10), 10);
  t.equal(lastGoodStep([20, 50], 20, 30), 0);
  t.equal(lastGoodStep([20, 50], 70, 0), 50, "between steps: the step below");
  t.equal(lastGoodStep([10, 50, 100], 50, 30), 30, "a start between steps is above the step below");
});

t.test(
  "at the last step healthy figures hold (done) and failing ones still roll back",
  async (t) => {
    t.match(decide(100, figures(200)), { kind: "hold", reason: /complete at 100%/ });
    t.match(decide(100, figures(200, { errors: 50 })), { kind: "rollback", to: 50 });
  },
);

t.test("the p99 is interpolated inside its bucket", async (t) => {
  t.equal(quantileMs(BOUNDS, [0, 100, 0, 0, 0], 0.5), 30);
  t.equal(quantileMs(BOUNDS, [0, 0, 0, 0, 0], 0.99), undefined);
});

t.test(
  "a p99 in the open top bucket is +Infinity and fails any finite gate, even one above the top bound",
  async (t) => {
    t.equal(
      quantileMs(BOUNDS, [0, 0, 0, 0, 4], 0.99),
      Number.POSITIVE_INFINITY,
      "only known to be above the top bound",
    );
    t.equal(quantileMs(BOUNDS, [99, 0, 0, 0, 1], 0.99), 10, "one in a hundred above: not p99");
    // Every answer above the top bound (500 ms): a gate at, or far past, that bound still fails.
    for (const maxP99Ms of [100, 500, 30_000]) {
      const f = emptyFigures(BOUNDS.length);
      f.requests = 200;
      f.latency[BOUNDS.length] = 200;
      const d = evaluatePlan({
        plan: { ...plan, gates: { ...plan.gates, maxP99Ms } },
        current: 50,
        start: 0,
        figures: f,
        boundsMs: BOUNDS,
      });
      t.match(d, { kind: "rollback", to: 25, reason: /p99 over 500ms > / }, `maxP99 ${maxP99Ms}`);
    }
  },
);

t.test(
  "at its last step the plan holds while the gates pass and still rolls back when one fails",
  async (t) => {
    t.match(decide(100, figures(200)), { kind: "hold", reason: /plan complete at 100%/ });
    t.match(decide(100, figures(200, { errors: 20 })), { kind: "rollback", to: 50 });
  },
);
