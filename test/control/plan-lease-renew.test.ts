/**
 * The plan leader keeps its lease through a NATS reconnect: renewals do not
 * overlap while one is still waiting, and a renewal that fails because an
 * earlier one of its own landed is not a loss.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { connect } from "@nats-io/transport-node";
import t from "tap";
import type { RouteConfig } from "../../src/config/types.js";
import type { CutoverStore } from "../../src/control/cutover-store.js";
import { PlanDriver } from "../../src/control/plan-driver.js";
import { Lease } from "../../src/control/plan-lease.js";
import { startNatsServer } from "../../src/devtools/nats-server.js";
import { GatewayMetrics } from "../../src/observability/metrics.js";
import { within } from "../helpers/cutover-fixture.js";

t.test("a lease check still waiting on NATS is not overlapped by the next one", async (t) => {
  const open = Lease.open;
  t.teardown(() => {
    Lease.open = open;
  });
  let ticks = 0;
  let inFlight = 0;
  let most = 0;
  let release = () => {};
  const hung = new Promise<void>((resolve) => {
    release = resolve;
  });
  Lease.open = (async () => ({
    isLeader: true,
    async tick() {
      ticks++;
      inFlight++;
      most = Math.max(most, inFlight);
      // The first check answers; the next ones hang like requests during a reconnect.
      if (ticks > 1) await hung;
      inFlight--;
    },
    async release() {},
  })) as unknown as typeof Lease.open;
  const route = {
    name: "orders.get",
    cutover: { nats: 0, shadow: 0, plan: { steps: [10, 100], everyMs: 10_000, gates: {} } },
  } as unknown as RouteConfig;
  const driver = new PlanDriver(
    {
      metrics: new GatewayMetrics(),
      store: { latest: () => undefined, bucket: undefined } as unknown as CutoverStore,
      routes: [route],
      log: { info: () => {}, warn: () => {} },
    },
    { renewMs: 5 },
  );
  const nc = {
    isClosed: () => false,
    publish: () => {},
    subscribe: () => ({ unsubscribe: () => {} }),
  } as unknown as NatsConnection;
  driver.start(nc);
  t.teardown(() => driver.stop());
  t.ok(await within(2000, () => ticks >= 2), "a second check started and hangs");
  // Give the interval many chances to start another check while the second one hangs.
  await new Promise((resolve) => setTimeout(resolve, 150));
  t.equal(most, 1, "never two lease checks at once");
  release();
});

t.test("overlapping renewals of the held lease keep the leader", async (t) => {
  const server = await startNatsServer({ jetstream: true });
  t.teardown(() => server.stop());
  const nc = await connect({ servers: server.url });
  t.teardown(() => nc.close());
  const lease = await Lease.open(nc, "replica-a", { ttlMs: 3000 });
  t.ok(await lease.tick(), "takes the free lease");
  const answers = await Promise.all([lease.tick(), lease.tick()]);
  t.same(answers, [true, true], "the renewal that lost to its own twin still leads");
  t.ok(lease.isLeader, "isLeader stays true");
  t.ok(await lease.tick(), "and renews again on the adopted revision");
  const other = await Lease.open(nc, "replica-b", { ttlMs: 3000 });
  t.notOk(await other.tick(), "another replica does not take a lease being renewed");
});
