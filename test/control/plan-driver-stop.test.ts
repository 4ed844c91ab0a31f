/**
 * PlanDriver's lifecycle on its own: a stop that lands during the first lease
 * check must leave no timer behind, or the gateway process never exits after
 * its drain. The lease is slowed down here to hold that moment open; with a
 * real KV bucket it lasts a few milliseconds.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import t from "tap";
import type { RouteConfig } from "../../src/config/types.js";
import type { CutoverStore } from "../../src/control/cutover-store.js";
import { PlanDriver } from "../../src/control/plan-driver.js";
import { Lease } from "../../src/control/plan-lease.js";
import { GatewayMetrics } from "../../src/observability/metrics.js";

const activeTimers = () =>
  process.getActiveResourcesInfo().filter((kind) => kind === "Timeout").length;

t.test("a stop during the first lease check leaves no timer running", async (t) => {
  const open = Lease.open;
  t.teardown(() => {
    Lease.open = open;
  });
  let leader = false;
  Lease.open = (async () => ({
    get isLeader() {
      return leader;
    },
    async tick() {
      await new Promise((resolve) => setTimeout(resolve, 100));
      leader = true;
    },
    async release() {
      leader = false;
    },
  })) as unknown as typeof Lease.open;
  const route = {
    name: "orders.get",
    cutover: { nats: 0, shadow: 0, plan: { steps: [10, 100], everyMs: 10_000, gates: {} } },
  } as unknown as RouteConfig;
  const driver = new PlanDriver({
    metrics: new GatewayMetrics(),
    store: { latest: () => undefined, bucket: undefined } as unknown as CutoverStore,
    routes: [route],
    log: { info: () => {}, warn: () => {} },
  });
  const nc = {
    isClosed: () => false,
    publish: () => {},
    subscribe: () => ({ unsubscribe: () => {} }),
  } as unknown as NatsConnection;
  const before = activeTimers();
  driver.start(nc);
  await new Promise((resolve) => setTimeout(resolve, 30)); // inside the first tick
  await driver.stop();
  t.equal(activeTimers(), before, "no interval was armed after stop()");
});
