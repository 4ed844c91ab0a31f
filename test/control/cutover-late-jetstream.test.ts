/**
 * JetStream that does not answer when a replica starts is not taken as gone for
 * good (nats.js reports both as "not enabled"): the cutover store and the plan
 * driver keep trying and follow the KV once it answers.
 */
import { connect, type NatsConnection } from "@nats-io/transport-node";
import t from "tap";
import { loadConfigAndProtos } from "../../src/config/load.js";
import type { RouteConfig } from "../../src/config/types.js";
import { CutoverState } from "../../src/control/cutover-state.js";
import { CutoverBucket, CutoverStore } from "../../src/control/cutover-store.js";
import { PlanDriver } from "../../src/control/plan-driver.js";
import { Lease } from "../../src/control/plan-lease.js";
import { freePort, startNatsServer } from "../../src/devtools/nats-server.js";
import { GatewayMetrics } from "../../src/observability/metrics.js";
import { cutoverRoutes, within } from "../helpers/cutover-fixture.js";

const quiet = { info: () => {}, warn: () => {} };

t.test("a store started without JetStream follows the KV once JetStream answers", async (t) => {
  const port = await freePort();
  let server = await startNatsServer({ port, jetstream: false });
  t.teardown(() => server.stop());
  const nc = await connect({
    servers: server.url,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 50,
  });
  t.teardown(() => nc.close());
  const { config } = loadConfigAndProtos(cutoverRoutes(), {});
  const state = new CutoverState(config.routes);
  const store = new CutoverStore(state, config.routes, quiet, { retryMs: 20 });
  store.start(nc);
  t.teardown(() => store.stop());
  t.ok(await within(5000, () => store.mode === "file"), "serves routes.yaml's values meanwhile");

  await server.stop();
  server = await startNatsServer({ port, jetstream: true });
  t.ok(await within(10_000, () => store.mode === "live"), "loads the live state once it answers");
  const writer = await connect({ servers: server.url });
  t.teardown(() => writer.close());
  const bucket = await CutoverBucket.open(writer);
  await bucket.set("users.get", { nats: 0, shadow: 0, by: "op", reason: "all to legacy" });
  t.ok(
    await within(
      5000,
      () => state.of("users.get").nats === 0 && state.of("users.get").source === "live",
    ),
    "applies a change written to the KV",
  );
});

t.test("the plan driver keeps trying to open the lease bucket", async (t) => {
  const open = Lease.open;
  t.teardown(() => {
    Lease.open = open;
  });
  let attempts = 0;
  Lease.open = (async () => {
    attempts++;
    if (attempts === 1) throw new Error("jetstream is not enabled");
    return { isLeader: true, async tick() {}, async release() {} };
  }) as unknown as typeof Lease.open;
  const route = {
    name: "orders.get",
    cutover: { nats: 0, shadow: 0, plan: { steps: [10, 100], everyMs: 10_000, gates: {} } },
  } as unknown as RouteConfig;
  const driver = new PlanDriver(
    {
      metrics: new GatewayMetrics(),
      store: { latest: () => undefined, bucket: undefined } as unknown as CutoverStore,
      routes: [route],
      log: quiet,
    },
    { renewMs: 10 },
  );
  const nc = {
    isClosed: () => false,
    publish: () => {},
    subscribe: () => ({ unsubscribe: () => {} }),
  } as unknown as NatsConnection;
  driver.start(nc);
  t.teardown(() => driver.stop());
  t.ok(await within(5000, () => driver.isLeader), "leads once the bucket opens");
  t.equal(attempts, 2, "opened on the second attempt");
});
