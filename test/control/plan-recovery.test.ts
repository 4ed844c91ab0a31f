/**
 * The plan lease and the plan's writes recover on their own: a leader whose
 * link to NATS stalls steps down before another replica may take over; a lost
 * lease bucket is made again; a latest value the replicas skipped does not
 * block the plan's next step.
 */
import net from "node:net";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import t from "tap";
import { loadConfigAndProtos } from "../../src/config/load.js";
import type { RouteConfig } from "../../src/config/types.js";
import { CutoverBucket, type CutoverStore } from "../../src/control/cutover-store.js";
import { PlanDriver } from "../../src/control/plan-driver.js";
import { LEASE_BUCKET, Lease } from "../../src/control/plan-lease.js";
import { startNatsServer } from "../../src/devtools/nats-server.js";
import { GatewayMetrics } from "../../src/observability/metrics.js";
import { TOKEN, within } from "../helpers/cutover-fixture.js";
import { sendJson, startLegacyServer } from "../helpers/legacy-server.js";
import { usersCreateRoute } from "../helpers/route-yaml.js";
import { startLoopbackGateway, writeRoutes } from "../helpers/stack.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A TCP proxy to `port` whose traffic stops both ways while `frozen` is set. */
async function freezableProxy(port: number) {
  const state = { frozen: false };
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(port, "127.0.0.1");
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("error", () => {});
      s.on("close", () => sockets.delete(s));
    }
    client.on("data", (d) => {
      if (!state.frozen) upstream.write(d);
    });
    upstream.on("data", (d) => {
      if (!state.frozen) client.write(d);
    });
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const close = () => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return { state, url: `127.0.0.1:${(server.address() as net.AddressInfo).port}`, close };
}

/** Ticks the lease every `ms` without overlapping, as PlanDriver does; returns a stop. */
function ticking(lease: Lease, ms: number): () => void {
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    lease
      .tick()
      .catch(() => {})
      .finally(() => {
        running = false;
      });
  }, ms);
  return () => clearInterval(timer);
}

t.test("no two leaders at any instant when the leader's link to NATS freezes", async (t) => {
  const server = await startNatsServer({ jetstream: true });
  t.teardown(() => server.stop());
  const proxy = await freezableProxy(Number(new URL(server.url).port));
  t.teardown(() => proxy.close());
  const ncA = await connect({ servers: proxy.url, reconnect: false });
  t.teardown(() => ncA.close().catch(() => {}));
  const ncB = await connect({ servers: server.url });
  t.teardown(() => ncB.close());
  const options = { ttlMs: 1000 };
  const a = await Lease.open(ncA, "replica-a", options);
  const b = await Lease.open(ncB, "replica-b", options);
  t.ok(await a.tick(), "a takes the free lease");
  t.teardown(ticking(a, 200));
  t.teardown(ticking(b, 200));
  await sleep(500);
  t.ok(a.isLeader && !b.isLeader, "a leads before the freeze");

  proxy.state.frozen = true;
  let both = 0;
  const end = Date.now() + 3500;
  while (Date.now() < end) {
    if (a.isLeader && b.isLeader) both++;
    await sleep(10);
  }
  t.equal(both, 0, "never both leaders at a sampled instant");
  t.ok(b.isLeader, "b took the lease over");
  t.notOk(a.isLeader, "a stepped down on its own");
  proxy.state.frozen = false;
});

t.test("a leader is elected again after the lease stream is deleted", async (t) => {
  const server = await startNatsServer({ jetstream: true });
  t.teardown(() => server.stop());
  const nc = await connect({ servers: server.url });
  t.teardown(() => nc.close());
  const route = {
    name: "orders.get",
    cutover: { nats: 0, shadow: 0, plan: { steps: [10, 100], everyMs: 10_000, gates: {} } },
  } as unknown as RouteConfig;
  const lines: string[] = [];
  const driver = new PlanDriver(
    {
      metrics: new GatewayMetrics(),
      store: { latest: () => undefined, bucket: undefined } as unknown as CutoverStore,
      routes: [route],
      log: { info: (m: string) => lines.push(m), warn: (m: string) => lines.push(m) },
    },
    { renewMs: 100, leaseTtlMs: 500 },
  );
  driver.start(nc);
  t.teardown(() => driver.stop());
  t.ok(await within(3000, () => driver.isLeader), "leads at first");

  const jsm = await jetstreamManager(nc);
  await jsm.streams.delete(`KV_${LEASE_BUCKET}`);
  t.ok(await within(3000, () => !driver.isLeader), "loses the lease with its bucket");
  t.ok(await within(8000, () => driver.isLeader), "leads again once the bucket is made again");
  t.ok(await jsm.streams.info(`KV_${LEASE_BUCKET}`), "the lease stream exists again");
  t.equal(lines.filter((l) => /answers again/.test(l)).length, 1, "the recovery is logged once");
});

t.test("a latest value the replicas skipped does not block the plan's step", async (t) => {
  const server = await startNatsServer({ jetstream: true });
  t.teardown(() => server.stop());
  const legacy = await startLegacyServer((_req, res) => sendJson(res, 200, { id: "1" }));
  t.teardown(() => legacy.close());
  const cutover = `
      nats: 0
      plan:
        steps: [10, 20, 30]
        every: 1s
        gates: { maxErrorRate: 0.1, maxP99: 1s, maxMismatchRate: 1, minRequests: 1 }`;
  const routesFile = writeRoutes(
    usersCreateRoute({ legacy: "users", cutover }),
    `legacy:\n  users: ${legacy.url}\n`,
  );
  const { config, root } = loadConfigAndProtos(routesFile, { natsUrl: server.url });
  const gateway = await startLoopbackGateway({
    config,
    root,
    plan: { renewMs: 100, leaseTtlMs: 500, publishMs: 50 },
    adminToken: TOKEN,
  });
  t.teardown(() => gateway.close());
  const nc = await connect({ servers: server.url });
  t.teardown(() => nc.close());
  const bucket = await CutoverBucket.open(nc);
  t.ok(await within(5000, () => gateway.cutoverStore.mode === "live"), "live");
  const applied = gateway.cutoverStore.latest("users.create")?.revision ?? 0;
  t.ok(applied > 0, "the seeded value applies");

  // A shadow on a route that is not idempotent: every replica refuses and skips it.
  const refused = await bucket.kv.put(
    "users.create",
    new TextEncoder().encode(
      JSON.stringify({ nats: 0, shadow: 5, by: "plan", reason: "x", at: new Date().toISOString() }),
    ),
  );
  t.ok(
    await within(
      8000,
      () => (gateway.cutoverStore.latest("users.create")?.revision ?? 0) > refused,
    ),
    "the plan writes its step over the skipped value",
  );
  const step = gateway.cutoverStore.latest("users.create");
  t.match(step, { by: "plan", nats: 10, shadow: 0 });
  t.equal(gateway.cutover.of("users.create").nats, 10, "the replica applies the step");
});
