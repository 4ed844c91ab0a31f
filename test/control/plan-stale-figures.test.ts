/**
 * The plan leader judges a window on figures served by the window's own
 * cutover value: a replica that has not applied it yet (or changed value
 * within its report) reports figures of another split, which do not count.
 */
import { connect } from "@nats-io/transport-node";
import t from "tap";
import { loadConfigAndProtos } from "../../src/config/load.js";
import { CutoverBucket } from "../../src/control/cutover-store.js";
import { latencyBoundsMs, MIXED, STATS_SUBJECT } from "../../src/control/plan-stats.js";
import { startNatsServer } from "../../src/devtools/nats-server.js";
import { durationBuckets } from "../../src/observability/buckets.js";
import { GatewayMetrics } from "../../src/observability/metrics.js";
import { FAST_PLAN, within } from "../helpers/cutover-fixture.js";
import { usersGetRoute } from "../helpers/route-yaml.js";
import { startLoopbackGateway, writeRoutes } from "../helpers/stack.js";

const server = await startNatsServer({ jetstream: true });
t.teardown(() => server.stop());
// No request is sent: the legacy upstream only has to exist in the table.
const routesFile = writeRoutes(
  usersGetRoute({ legacy: "users", cutover: FAST_PLAN }),
  "legacy:\n  users: http://127.0.0.1:9\n",
);
const { config, root } = loadConfigAndProtos(routesFile, { natsUrl: server.url });
const gateway = await startLoopbackGateway({
  config,
  root,
  plan: { renewMs: 100, leaseTtlMs: 500, publishMs: 50 },
});
t.teardown(() => gateway.close());
await gateway.connected;
await gateway.cutoverStore.settled;
const nc = await connect({ servers: server.url });
t.teardown(() => nc.close());
const bucket = await CutoverBucket.open(nc);

const buckets = latencyBoundsMs(new GatewayMetrics()).length + 1;
/**
 * 20 healthy NATS requests, as another replica would report them, served by
 * `revision`; `bounds` as a replica on another routes.yaml would send them
 * (a version before plan gates became bounds sends none).
 */
function healthyReport(revision: number, bounds?: number[]): string {
  const figures = { requests: 20, errors: 0, compared: 0, mismatches: 0 };
  const latency = Array.from({ length: buckets }, (_, i) => (i === 0 ? 20 : 0));
  return JSON.stringify({
    replica: "other",
    routes: { "users.get": { ...figures, latency } },
    revisions: { "users.get": revision },
    ...(bounds === undefined ? {} : { bounds }),
  });
}

/** Publishes `report` every 50 ms for `ms`. */
async function reportFor(report: string, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    nc.publish(STATS_SUBJECT, report);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

t.test(
  "figures served by another value, or by two within one report, do not move the plan",
  async (t) => {
    t.ok(await within(3000, () => gateway.plan.isLeader), "the one replica leads");
    const seed = gateway.cutoverStore.latest("users.get")!;
    t.equal(seed.nats, 20);
    await reportFor(healthyReport(seed.revision + 7), 1500);
    await reportFor(healthyReport(MIXED), 1500);
    // Another routes.yaml's plan gate among the buckets: its latencies would land in the wrong ones.
    const otherBounds = durationBuckets([0.4]).map((s) => s * 1000);
    t.equal(otherBounds.length, buckets, "as many buckets, other bounds");
    await reportFor(healthyReport(seed.revision, otherBounds), 1500);
    t.equal(gateway.cutover.of("users.get").nats, 20, "still 20 after fifteen windows");
    t.same(
      (await bucket.history("users.get")).map((row) => (row.kind === "value" ? row.by : row.kind)),
      ["routes.yaml"],
      "only the seed",
    );

    const stepped = reportFor(healthyReport(seed.revision), 3000);
    t.ok(
      await within(3000, () => gateway.cutover.of("users.get").nats === 40),
      "the same figures served by the window's value step it up",
    );
    await stepped;
  },
);
