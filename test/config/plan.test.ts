import t, { type Test } from "tap";
import { loadConfig } from "../../src/config/load.js";
import { P99_TOP_BOUND_MS } from "../../src/config/plan.js";
import { latencyBoundsMs } from "../../src/control/plan-stats.js";
import type { ConfigProblem } from "../../src/errors.js";
import { GatewayMetrics } from "../../src/observability/metrics.js";
import { problemsOf, route, table, writeTable } from "./fixtures/helpers.js";

const GATES = "{ maxErrorRate: 0.01, maxP99: 250ms, maxMismatchRate: 0.001, minRequests: 100 }";

function withPlan(plan: string, extra: Record<string, string> = {}): string {
  return route({ cutover: `{ nats: 0, plan: ${plan} }`, ...extra });
}

/** Each expected problem is among `problems` (order: by position in the file). */
function hasAll(
  t: Test,
  problems: ConfigProblem[],
  expected: Array<{ key: string; message: RegExp }>,
) {
  for (const e of expected) {
    t.ok(
      problems.some((p) => p.key === e.key && e.message.test(p.message)),
      `${e.key} ${e.message}`,
    );
  }
}

function problemsFor(t: Test, routes: string): ConfigProblem[] {
  return problemsOf(t, () => loadConfig(writeTable(t, table(routes))));
}

t.test("a valid plan loads with every in ms and the gates by name", async (t) => {
  const config = loadConfig(
    writeTable(t, table(withPlan(`{ steps: [1, 5, 25, 50, 100], every: 5m, gates: ${GATES} }`))),
  );
  t.strictSame(config.routes[0]!.cutover.plan, {
    steps: [1, 5, 25, 50, 100],
    everyMs: 300_000,
    gates: { maxErrorRate: 0.01, maxP99Ms: 250, maxMismatchRate: 0.001, minRequests: 100 },
  });
});

t.test("a route without a plan has no plan key at all", async (t) => {
  const config = loadConfig(writeTable(t, table(route({ cutover: "{ nats: 0 }" }))));
  t.notOk("plan" in config.routes[0]!.cutover);
});

t.test("steps must go up, each a percentage 0-100, and not be empty", async (t) => {
  const cases: Array<[string, string, RegExp]> = [
    ["[5, 1]", "routes[0].cutover.plan.steps[1]", /must be more than the step before it \(5\)/],
    ["[5, 5]", "routes[0].cutover.plan.steps[1]", /must be more than the step before it/],
    ["[1, 101]", "routes[0].cutover.plan.steps[1]", /must be at most 100/],
    ["[-1, 5]", "routes[0].cutover.plan.steps[0]", /must be at least 0/],
    ["[]", "routes[0].cutover.plan.steps", /at least one percentage/],
    ["5", "routes[0].cutover.plan.steps", /must be a list/],
  ];
  for (const [steps, key, message] of cases) {
    const problems = problemsFor(t, withPlan(`{ steps: ${steps}, every: 1m, gates: ${GATES} }`));
    t.match(problems, [{ key, message }], steps);
  }
});

t.test("every must be a positive duration", async (t) => {
  for (const [every, message] of [
    ["5", /needs a unit/],
    ["0", /must be more than 0/],
    ["soon", /must be a duration/],
  ] as const) {
    const problems = problemsFor(t, withPlan(`{ steps: [50], every: ${every}, gates: ${GATES} }`));
    t.match(problems, [{ key: "routes[0].cutover.plan.every", message }], every);
  }
});

t.test(
  "gates: unknown keys get a suggestion, missing ones are named, values are checked",
  async (t) => {
    const typo = problemsFor(
      t,
      withPlan(
        "{ steps: [50], every: 1m, gates: { maxErrorRates: 0.01, maxP99: 1s, maxMismatchRate: 0, minRequests: 5 } }",
      ),
    );
    hasAll(t, typo, [
      { key: "routes[0].cutover.plan.gates.maxErrorRates", message: /unknown key.*maxErrorRate/ },
      { key: "routes[0].cutover.plan.gates.maxErrorRate", message: /is required/ },
    ]);
    const bad = problemsFor(
      t,
      withPlan(
        "{ steps: [50], every: 1m, gates: { maxErrorRate: 2, maxP99: 100, maxMismatchRate: 0, minRequests: 0.5 } }",
      ),
    );
    t.match(bad, [
      { key: "routes[0].cutover.plan.gates.maxErrorRate", message: /at most 1/ },
      { key: "routes[0].cutover.plan.gates.maxP99", message: /needs a unit/ },
      { key: "routes[0].cutover.plan.gates.minRequests", message: /whole number/ },
    ]);
    t.equal(bad.length, 3);
  },
);

t.test("a plan's own keys are checked and steps, every and gates are required", async (t) => {
  const problems = problemsFor(t, withPlan("{ step: [1] }"));
  hasAll(t, problems, [
    { key: "routes[0].cutover.plan.step", message: /unknown key "step".*steps/ },
    { key: "routes[0].cutover.plan.steps", message: /is required/ },
    { key: "routes[0].cutover.plan.every", message: /is required/ },
    { key: "routes[0].cutover.plan.gates", message: /is required/ },
  ]);
});

t.test("a plan needs a legacy upstream", async (t) => {
  const problems = problemsFor(
    t,
    route({
      legacy: "",
      cutover: `{ nats: 100, plan: { steps: [50], every: 1m, gates: ${GATES} } }`,
    }),
  );
  t.match(problems, [{ key: "routes[0].cutover.plan", message: /needs a legacy upstream/ }]);
});

t.test("gates.minRequests past 2^53 is refused as too large", async (t) => {
  const gates = GATES.replace("minRequests: 100", "minRequests: 1e300");
  const problems = problemsFor(t, withPlan(`{ steps: [10, 100], every: 1m, gates: ${gates} }`));
  t.match(problems, [
    {
      key: "routes[0].cutover.plan.gates.minRequests",
      message: "is too large: at most 9007199254740991, got 1e300",
    },
  ]);
});

t.test(
  "gates.maxP99 at or above the latency histogram's top bound (10s) is refused: it could never fail",
  async (t) => {
    t.equal(
      P99_TOP_BOUND_MS,
      latencyBoundsMs(new GatewayMetrics()).at(-1),
      "the bound is the duration histogram's top bucket",
    );
    for (const maxP99 of ["10s", "10000ms", "30s", "1h"]) {
      const gates = GATES.replace("maxP99: 250ms", `maxP99: ${maxP99}`);
      const problems = problemsFor(t, withPlan(`{ steps: [10, 100], every: 1m, gates: ${gates} }`));
      t.match(
        problems,
        [
          {
            location: /:\d+:\d+$/,
            route: "users.get",
            key: "routes[0].cutover.plan.gates.maxP99",
            message: new RegExp(
              `^must be below 10s, the latency histogram's top bound.*got "${maxP99}"$`,
            ),
          },
        ],
        maxP99,
      );
      t.equal(problems.length, 1, `${maxP99}: one problem`);
    }
    const config = loadConfig(
      writeTable(
        t,
        table(
          withPlan(`{ steps: [10, 100], every: 1m, gates: ${GATES.replace("250ms", "9999ms")} }`),
        ),
      ),
    );
    t.equal(config.routes[0]!.cutover.plan?.gates.maxP99Ms, 9999, "just below the bound loads");
  },
);

t.test(
  "gates.maxErrorRate and maxMismatchRate at 1 load: a rate gate at 1 is switched off",
  async (t) => {
    const gates = GATES.replace("maxErrorRate: 0.01", "maxErrorRate: 1").replace(
      "maxMismatchRate: 0.001",
      "maxMismatchRate: 1",
    );
    const config = loadConfig(
      writeTable(t, table(withPlan(`{ steps: [10, 100], every: 1m, gates: ${gates} }`))),
    );
    t.equal(config.routes[0]!.cutover.plan?.gates.maxErrorRate, 1);
    t.equal(config.routes[0]!.cutover.plan?.gates.maxMismatchRate, 1);
  },
);
