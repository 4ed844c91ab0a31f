import t from "tap";
import { loadConfigAndProtos } from "../../src/config/load.js";
import { emptyFigures, evaluatePlan } from "../../src/control/plan-evaluate.js";
import { startNatsServer } from "../../src/devtools/nats-server.js";
import { DURATION_BUCKETS, durationBuckets } from "../../src/observability/buckets.js";
import { usersGetRoute } from "../helpers/route-yaml.js";
import { startLoopbackGateway, writeRoutes } from "../helpers/stack.js";

t.test("a plan's maxP99 becomes a bound of the duration histogram, once, in order", async (t) => {
  const buckets = durationBuckets([0.45, 0.45, 0.5]);
  t.equal(buckets.length, DURATION_BUCKETS.length + 1, "0.5 was one already; 0.45 comes once");
  t.same(buckets.slice(8, 11), [0.25, 0.45, 0.5]);
  t.same(durationBuckets(), DURATION_BUCKETS);
});

t.test(
  "with the gate as a bound, answers all below maxP99 pass it, however the bucket below is spread",
  async (t) => {
    const boundsMs = durationBuckets([0.45]).map((s) => s * 1000);
    const at = (ms: number) => boundsMs.indexOf(ms);
    const plan = {
      steps: [10, 20],
      everyMs: 1000,
      gates: { maxErrorRate: 1, maxP99Ms: 450, maxMismatchRate: 1, minRequests: 10 },
    };
    const judge = (slowerThanGate: number) => {
      const figures = emptyFigures(boundsMs.length);
      figures.requests = 200;
      figures.latency[at(450)] = 200 - slowerThanGate; // 250-450 ms: at most 329 ms, say
      figures.latency[at(500)] = slowerThanGate; // 450-500 ms
      return evaluatePlan({ plan, current: 10, start: 0, figures, boundsMs });
    };
    // Without 450 as a bound the p99 was interpolated inside 250-500 ms: 497.5 ms, a rollback.
    t.match(judge(0), { kind: "step", to: 20 });
    t.match(judge(2), { kind: "step", to: 20 }, "1% above the gate: the p99 is not");
    t.match(judge(3), { kind: "rollback", reason: /p99 .* > 450ms/ }, "1.5% above it: it is");
  },
);

t.test("the gateway's histogram carries its plans' maxP99 bounds", async (t) => {
  const server = await startNatsServer();
  t.teardown(() => server.stop());
  const cutover = `
      nats: 0
      plan:
        steps: [50, 100]
        every: 1m
        gates: { maxErrorRate: 0.1, maxP99: 450ms, maxMismatchRate: 1, minRequests: 10 }`;
  const routes = writeRoutes(
    usersGetRoute({ legacy: "users", cutover }),
    "legacy:\n  users: http://127.0.0.1:9\n",
  );
  const { config, root } = loadConfigAndProtos(routes, { natsUrl: server.url });
  const gateway = await startLoopbackGateway({ config, root });
  t.teardown(() => gateway.close());
  const text = await (await fetch(`${gateway.adminUrl}/metrics`)).text();
  t.match(
    text,
    /^turnout_request_duration_seconds_bucket\{le="0\.45",route="users\.get",backend="nats"\} 0$/m,
  );
});
