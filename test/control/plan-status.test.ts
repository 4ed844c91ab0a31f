import t from "tap";
import { RESEED_BY } from "../../src/control/cutover-rules.js";
import { SEED_BY } from "../../src/control/cutover-store.js";
import { PLAN_BY, planStatus } from "../../src/control/plan-status.js";

const route = {
  cutover: { nats: 10, shadow: 0, plan: { steps: [25, 50, 100], everyMs: 60_000 } },
} as unknown as Parameters<typeof planStatus>[0];

t.test("no plan, no status", async (t) => {
  const plain = { cutover: { nats: 10, shadow: 0 } } as unknown as typeof route;
  t.equal(planStatus(plain, undefined), undefined);
});

t.test("from the seed, the plan runs towards its first step", async (t) => {
  t.match(planStatus(route, { nats: 10, by: SEED_BY, reason: "seeded" }), {
    state: "running",
    next: 25,
    detail: "next step 25%",
  });
});

t.test(
  "with no live value (a deleted key, no JetStream) the plan is paused: it has nothing to step over",
  async (t) => {
    t.match(planStatus(route, undefined), {
      state: "paused",
      detail: /^no live value .*routes\.yaml's values apply; a value set --by plan resumes it$/,
    });
    t.equal(planStatus(route, undefined)?.next, undefined);
  },
);

t.test("routes.yaml's values re-seeded into a lost bucket pause the plan", async (t) => {
  t.match(planStatus(route, { nats: 10, by: RESEED_BY, reason: "bucket lost" }), {
    state: "paused",
  });
});

t.test("between steps it names the next one; at the last it is done", async (t) => {
  t.match(planStatus(route, { nats: 50, by: PLAN_BY, reason: "plan: step 2/3" }), {
    state: "running",
    next: 100,
  });
  const done = planStatus(route, { nats: 100, by: PLAN_BY, reason: "plan: step 3/3" });
  t.match(done, { state: "done", detail: "at its last step, 100%" });
  t.equal(done?.next, undefined);
});

t.test("a value set --by Plan, in any case, resumes it as --by plan does", async (t) => {
  t.match(planStatus(route, { nats: 50, by: "Plan", reason: "resume" }), { state: "running" });
});

t.test("an operator's value pauses it; the plan's own rollback stops it", async (t) => {
  t.match(planStatus(route, { nats: 30, by: "alice", reason: "hold" }), {
    state: "paused",
    detail: "set by alice: hold",
  });
  t.match(
    planStatus(route, {
      nats: 25,
      by: PLAN_BY,
      reason: "plan rollback: 50% -> 25% (last good step)",
    }),
    { state: "stopped", detail: /^plan rollback: 50% -> 25%/ },
  );
});

t.test("a running plan whose step the lease holder cannot write shows blocked", async (t) => {
  const latest = { nats: 25, by: PLAN_BY, reason: "plan: step 1/3" };
  t.match(planStatus(route, latest, "cannot write 50%: no quorum"), {
    state: "blocked",
    next: 50,
    detail: "cannot write 50%: no quorum",
  });
  t.match(planStatus(route, { nats: 30, by: "alice", reason: "hold" }, "x"), { state: "paused" });
  t.match(planStatus(route, { nats: 100, by: PLAN_BY, reason: "plan: step 3/3" }, "x"), {
    state: "done",
  });
});
