/**
 * What the plan leader judges a window on: every stats interval of the window,
 * the last one included (its reports arrive after the window comes due), and
 * nothing less (a lapse of the lease that dropped reports restarts the
 * window). The driver runs for real over NATS; its intervals are ticked by
 * hand on a hand-moved clock, and its cutover store is a fake holding the
 * route's latest value, so that each step is exactly where the test puts it.
 */
import { connect, type NatsConnection } from "@nats-io/transport-node";
import t, { type Test } from "tap";
import type { RouteConfig } from "../../src/config/types.js";
import type { CutoverRevision, CutoverStore } from "../../src/control/cutover-store.js";
import { PlanDriver } from "../../src/control/plan-driver.js";
import { Lease } from "../../src/control/plan-lease.js";
import { startNatsServer } from "../../src/devtools/nats-server.js";
import { GatewayMetrics } from "../../src/observability/metrics.js";

const PUBLISH_MS = 777;
const RENEW_MS = 999;
const STEP_MS = 100;

const server = await startNatsServer({ jetstream: true });
t.teardown(() => server.stop());

const clock = { now: 1_000_000 };
const realNow = Date.now;
Date.now = () => clock.now;
t.teardown(() => {
  Date.now = realNow;
});

const turns = async (n = 5) => {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
};

function plannedRoute(everyMs: number): RouteConfig {
  const gates = { maxErrorRate: 0.05, maxP99Ms: 1000, maxMismatchRate: 1, minRequests: 20 };
  return {
    name: "orders.get",
    legacy: "orders",
    idempotent: true,
    cutover: { nats: 10, shadow: 0, plan: { steps: [10, 50, 100], everyMs, gates } },
  } as unknown as RouteConfig;
}

/** The lease as `lease` has it, for the test's whole run. */
function leaseFrom(t: Test, lease: (holder: string) => unknown): void {
  const open = Lease.open;
  Lease.open = (async (_nc: unknown, holder: string) => lease(holder)) as typeof Lease.open;
  t.teardown(() => {
    Lease.open = open;
  });
}

/** A started driver whose publish and renew intervals the test ticks. */
async function driven(t: Test, nc: NatsConnection, route: RouteConfig) {
  const metrics = new GatewayMetrics({ extraDurationBoundsS: [1] });
  let latest = { nats: 10, shadow: 0, by: "routes.yaml", reason: "", at: "", revision: 1 };
  const writes: CutoverRevision[] = [];
  const store = {
    latest: () => latest,
    bucket: {
      async change(_route: RouteConfig, build: (live: unknown) => CutoverRevision) {
        latest = { ...build({ ...latest }), revision: latest.revision + 1 };
        writes.push(latest);
        return latest;
      },
    },
  } as unknown as CutoverStore;
  const ticks = new Map<number, () => void>();
  const setInterval = globalThis.setInterval;
  globalThis.setInterval = ((fn: () => void, ms: number) => {
    if (ms !== PUBLISH_MS && ms !== RENEW_MS) return setInterval(fn, ms);
    ticks.set(ms, fn);
    return { unref() {}, ref() {} };
  }) as typeof globalThis.setInterval;
  const log = { info: () => {}, warn: () => {} };
  const driver = new PlanDriver(
    { metrics, store, routes: [route], log },
    { publishMs: PUBLISH_MS, renewMs: RENEW_MS, leaseTtlMs: 3000 },
  );
  try {
    driver.start(nc);
    for (let i = 0; i < 200 && ticks.size < 2; i++) await turns(1);
  } finally {
    globalThis.setInterval = setInterval;
  }
  t.teardown(() => driver.stop());
  /** STEP_MS later: `ok` and `errors` NATS answers served, the stats published and received. */
  const interval = async (ok: number, errors: number) => {
    const served = metrics.route(route.name);
    for (let i = 0; i < ok; i++) served.observeRequest("nats", 200, 0.01);
    for (let i = 0; i < errors; i++) served.observeRequest("nats", 503, 0.01);
    clock.now += STEP_MS;
    ticks.get(PUBLISH_MS)!();
    await turns();
    await nc.flush();
    await new Promise((resolve) => setTimeout(resolve, 30));
    await turns();
  };
  return { driver, writes, interval, renew: ticks.get(RENEW_MS)! };
}

async function client(t: Test): Promise<NatsConnection> {
  const nc = await connect({ servers: server.url });
  t.teardown(() => nc.close());
  return nc;
}

t.test(
  "errors in a window's last stats interval are judged: the plan holds at its step",
  async (t) => {
    leaseFrom(t, () => ({
      isLeader: true,
      failures: 0,
      tick: async () => true,
      release: async () => {},
    }));
    const { writes, interval } = await driven(t, await client(t), plannedRoute(1000));
    await interval(0, 0); // the window opens
    for (let i = 0; i < 9; i++) await interval(10, 0);
    await interval(0, 50); // its last interval: 50 of 140 requests fail
    for (let i = 0; i < 22; i++) await interval(10, 0);
    t.notOk(
      writes.some((w) => w.nats === 50 && /errors 0\.00%/.test(w.reason)),
      "no step on a window judged without its errors",
    );
    t.comment(JSON.stringify(writes.map((w) => [w.nats, w.reason])));
    t.match(writes[0], { reason: /^plan rollback/ }, "it rolls back");
  },
);

t.test(
  "reports dropped while the lease lapsed restart the window: its errors are not lost",
  async (t) => {
    // The real lease over a KV whose renewals answer when the test says.
    let revision = 0;
    let answerRenewal: ((revision: number) => void) | undefined;
    let holdRenewals = false;
    const kv = {
      get: async () => null,
      create: async () => ++revision,
      update: () =>
        holdRenewals
          ? new Promise<number>((resolve) => {
              answerRenewal = resolve;
            })
          : Promise.resolve(++revision),
      delete: async () => {},
    };
    type LeaseClass = new (kv: unknown, holder: string, options: { ttlMs: number }) => Lease;
    leaseFrom(t, (holder) => new (Lease as unknown as LeaseClass)(kv, holder, { ttlMs: 3000 }));
    const { driver, writes, interval, renew } = await driven(
      t,
      await client(t),
      plannedRoute(3000),
    );
    t.ok(driver.isLeader);
    await interval(0, 0); // the window opens
    for (let i = 0; i < 9; i++) await interval(10, 0);
    holdRenewals = true; // JetStream slow to answer; core NATS is fine
    renew();
    await turns();
    for (let i = 0; i < 13; i++) await interval(10, 0);
    await interval(10, 50); // 80% of the lease's life: it counts itself out, drops this report
    t.notOk(driver.isLeader, "a lapse");
    holdRenewals = false;
    answerRenewal!(++revision);
    await turns();
    t.ok(driver.isLeader, "back before its next tick noticed");
    for (let i = 0; i < 5; i++) await interval(10, 0);
    renew();
    await turns();
    for (let i = 0; i < 3; i++) await interval(10, 0);
    t.notOk(
      writes.some((w) => w.nats === 50),
      "no step on a window with a hole in it",
    );
  },
);
