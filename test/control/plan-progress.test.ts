import { connect } from "@nats-io/transport-node";
import type protobuf from "protobufjs";
import t from "tap";
import { loadConfigAndProtos } from "../../src/config/load.js";
import { CutoverBucket } from "../../src/control/cutover-store.js";
import { startNatsServer } from "../../src/devtools/nats-server.js";
import type { RunningGateway } from "../../src/server/start.js";
import { ServiceError, startWorker } from "../../src/worker/index.js";
import { call, FAST_PLAN, TOKEN, within } from "../helpers/cutover-fixture.js";
import { sendJson, startLegacyServer } from "../helpers/legacy-server.js";
import { usersCreateRoute, usersGetRoute, usersListRoute } from "../helpers/route-yaml.js";
import { startLoopbackGateway, writeRoutes } from "../helpers/stack.js";

const ROUTES =
  usersGetRoute({ legacy: "users", cutover: FAST_PLAN }) +
  usersListRoute({ legacy: "users", cutover: FAST_PLAN }) +
  usersCreateRoute({ legacy: "users", cutover: FAST_PLAN });

const server = await startNatsServer({ jetstream: true });
t.teardown(() => server.stop());
const legacy = await startLegacyServer((_req, res) => sendJson(res, 200, { id: "1" }));
t.teardown(() => legacy.close());
const routesFile = writeRoutes(ROUTES, `legacy:\n  users: ${legacy.url}\n`);

async function replica(): Promise<RunningGateway> {
  const { config, root } = loadConfigAndProtos(routesFile, { natsUrl: server.url });
  const gateway = await startLoopbackGateway({
    config,
    root,
    plan: { renewMs: 100, leaseTtlMs: 500, publishMs: 50 },
    adminToken: TOKEN,
  });
  await gateway.connected;
  await gateway.cutoverStore.settled;
  return gateway;
}

const a = await replica();
const b = await replica();
const open = new Set([a, b]);
t.teardown(async () => {
  for (const g of open) await g.close();
});
const nc = await connect({ servers: server.url });
t.teardown(() => nc.close());
const bucket = await CutoverBucket.open(nc);
const { root } = loadConfigAndProtos(routesFile, { natsUrl: server.url });

let failing = false;
const workers = [
  startWorker({
    nc,
    root,
    subject: "svc.users.*.get",
    requestType: "users.v1.GetUserRequest",
    responseType: "users.v1.User",
    handle(req: protobuf.Message & { id: string }) {
      if (failing) throw new ServiceError(500, "worker broke");
      return { id: req.id };
    },
  }),
  startWorker({
    nc,
    root,
    subject: "svc.users.*.list",
    requestType: "users.v1.ListUsersRequest",
    responseType: "users.v1.ListUsersResponse",
    handle: () => ({ users: [] }),
  }),
  startWorker({
    nc,
    root,
    subject: "svc.users.*.create",
    requestType: "users.v1.CreateUserRequest",
    responseType: "users.v1.User",
    handle: (req: protobuf.Message & { user?: protobuf.Message }) => req.user ?? {},
  }),
];
t.teardown(async () => {
  for (const w of workers) await w.stop();
});

await within(5000, () => a.cutoverStore.mode === "live" && b.cutoverStore.mode === "live");

/** Sends requests through the given replicas (5 at a time) until `until` is true or `ms` pass. */
async function traffic(
  gateways: RunningGateway[],
  path: string,
  ms: number,
  until: () => boolean = () => false,
  method = "GET",
): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (until()) return true;
    await Promise.all(
      gateways.flatMap((g) =>
        Array.from({ length: 5 }, async () => {
          const init =
            method === "POST"
              ? { method, body: '{"id":"1"}', headers: { "content-type": "application/json" } }
              : {};
          await (await fetch(`${g.url}${path}`, init)).arrayBuffer();
        }),
      ),
    );
  }
  return until();
}

/** The plan status `GET /admin/routes` shows for `route` on `gateway` (any replica). */
async function planOf(gateway: RunningGateway, route: string) {
  const { body } = await call(`${gateway.adminUrl}/admin/routes`);
  const routes = body.routes as Array<{ name: string; plan?: Record<string, unknown> }>;
  return routes.find((r) => r.name === route)?.plan;
}

async function history(route: string) {
  return (await bucket.history(route)).flatMap((r) =>
    r.kind === "value" ? [{ nats: r.nats, by: r.by, reason: r.reason }] : [],
  );
}

t.test("exactly one replica holds the plan lease", async (t) => {
  t.ok(await within(3000, () => a.plan.isLeader || b.plan.isLeader), "someone leads");
  t.not(a.plan.isLeader, b.plan.isLeader, "not both");
});

t.test(
  "a stats report that is not well formed is dropped; the leader's connection keeps working",
  async (t) => {
    for (const poison of [
      '{"replica":"x","routes":{"users.get":null}}',
      '{"replica":"x","routes":[7]}',
      "{",
    ]) {
      nc.publish("turnout.stats", poison);
    }
    await nc.flush();
    await new Promise((resolve) => setTimeout(resolve, 100));
    for (const g of [a, b]) {
      t.notOk(g.nats.connection?.isClosed(), "the connection is open");
      // A NATS request/reply through the replica: its reads still flow.
      const res = await fetch(`${g.url}/v1/regions/eu/users?page_size=1`, {
        headers: { "turnout-backend": "nats", "turnout-token": TOKEN },
      });
      t.equal(res.status, 200);
      // The worker's empty list (printed {}), not the legacy fallback's {"id":"1"} after a NATS timeout.
      t.same(await res.json(), {}, "the NATS worker answered");
    }
  },
);

t.test("too little traffic holds the step: nothing moves over several windows", async (t) => {
  await new Promise((r) => setTimeout(r, 1500));
  t.equal(a.cutover.of("users.create").nats, 20);
  t.same(
    (await history("users.create")).map((h) => h.by),
    ["routes.yaml"],
    "the history holds only the seed",
  );
});

t.test("healthy traffic on both replicas steps the plan up to its last step", async (t) => {
  const done = await traffic([a, b], "/v1/regions/eu/users/7", 8000, () => {
    return a.cutover.of("users.get").nats === 80 && b.cutover.of("users.get").nats === 80;
  });
  t.ok(done, "both replicas serve 80% on NATS");
  const steps = (await history("users.get")).filter((h) => h.by === "plan");
  t.same(
    steps.map((h) => h.nats),
    [40, 60, 80],
  );
  t.match(steps[0]!.reason, /^plan: step 1\/3 20% -> 40%, gates held: \d+ requests, errors 0\.00%/);
  const follower = a.plan.isLeader ? b : a;
  t.match(await planOf(follower, "users.get"), { state: "done", steps: [40, 60, 80] });
  t.match(await planOf(follower, "users.create"), { state: "running", next: 40 }, "still at 20%");
});

t.test("a failing worker rolls the plan back to the last good step, with the reason", async (t) => {
  failing = true;
  const rolled = await traffic([a, b], "/v1/regions/eu/users/7", 8000, () => {
    return a.cutover.of("users.get").nats === 60;
  });
  failing = false;
  t.ok(rolled, "back at 60%, the step before 80%");
  const last = (await history("users.get")).at(-1)!;
  t.equal(last.by, "plan");
  t.match(
    last.reason,
    /^plan rollback: 80% -> 60% \(last good step\): error rate \d+\.\d+% > 10\.00%/,
  );
  await traffic([a, b], "/v1/regions/eu/users/7", 1000);
  t.equal(a.cutover.of("users.get").nats, 60, "the plan stays stopped after its rollback");
  t.match(await planOf(b, "users.get"), { state: "stopped", detail: /^plan rollback: 80% -> 60%/ });
});

t.test("an operator's set pauses the plan for that route", async (t) => {
  await bucket.set("users.list", { nats: 30, shadow: 0, by: "alice", reason: "hold it here" });
  t.ok(await within(1000, () => a.cutover.of("users.list").nats === 30), "applied");
  await traffic([a, b], "/v1/regions/eu/users", 1500);
  t.equal(a.cutover.of("users.list").nats, 30, "still 30 after five windows of healthy traffic");
  t.same(
    (await history("users.list")).map((h) => h.by),
    ["routes.yaml", "alice"],
  );
  t.match(await planOf(a, "users.list"), { state: "paused", detail: "set by alice: hold it here" });
});

t.test("closing the leader hands the plan to the other replica", async (t) => {
  const leader = a.plan.isLeader ? a : b;
  const other = leader === a ? b : a;
  open.delete(leader);
  await leader.close();
  t.ok(await within(2000, () => other.plan.isLeader), "the other replica leads");
  const moved = await traffic(
    [other],
    "/v1/regions/eu/users",
    8000,
    () => other.cutover.of("users.create").nats >= 40,
    "POST",
  );
  t.ok(moved, "the new leader steps users.create up");
  const steps = (await history("users.create")).filter((h) => h.by === "plan");
  t.equal(steps[0]?.nats, 40);
});
