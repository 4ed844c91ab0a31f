/**
 * Changes that race or follow bad values: an omitted field keeps the value
 * the fleet applies at write time (read from the KV, compare-and-set on its
 * revision), and the CLI reads values by the replicas' rules.
 */
import { connect } from "@nats-io/transport-node";
import t from "tap";
import { runCutover } from "../../src/cli/cutover.js";
import { loadConfigAndProtos } from "../../src/config/load.js";
import { CutoverBucket } from "../../src/control/cutover-store.js";
import { captured } from "../helpers/cli-output.js";
import { call, cutoverRoutes, TOKEN, within } from "../helpers/cutover-fixture.js";
import { startLoopbackGateway, startStack } from "../helpers/stack.js";

const routesFile = cutoverRoutes();
const stack = await startStack(t, routesFile, { jetstream: true, adminToken: TOKEN });
const a = stack.gateway;
const { config, root } = loadConfigAndProtos(routesFile, { natsUrl: stack.server.url });
const b = await startLoopbackGateway({ config, root, adminToken: TOKEN });
t.teardown(() => b.close());
await within(5000, () => a.cutoverStore.mode === "live" && b.cutoverStore.mode === "live");

const nc = await connect({ servers: stack.server.url });
t.teardown(() => nc.close());
const bucket = await CutoverBucket.open(nc);
const routeNamed = (name: string) => config.routes.find((r) => r.name === name)!;
const by = { by: "test", reason: "test" };

async function cli(...argv: string[]) {
  return captured((out) =>
    runCutover([...argv, "--config", routesFile], out, { TURNOUT_NATS_URL: stack.server.url }),
  );
}

t.test(
  "a PUT without shadow keeps the KV's shadow even when the replica's copy is stale",
  async (t) => {
    // Replica b stops following the bucket: its local copy keeps shadow 0.
    await b.cutoverStore.stop();
    await bucket.set("users.get", { nats: 25, shadow: 10, ...by });
    const put = await call(`${b.adminUrl}/admin/routes/users.get/cutover`, {
      method: "PUT",
      body: JSON.stringify({ nats: 30, reason: "raise nats only" }),
    });
    t.equal(put.status, 200);
    t.match(put.body, { nats: 30, shadow: 10 });
    t.match(await bucket.current(routeNamed("users.get")), { nats: 30, shadow: 10 });
  },
);

t.test("a change that another write overtakes is re-read and built on that write", async (t) => {
  await bucket.set("users.get", { nats: 10, shadow: 0, ...by });
  let builds = 0;
  const written = await bucket.change(routeNamed("users.get"), (live) => {
    builds++;
    // Operator A's write lands between this read and the compare-and-set.
    if (builds === 1) void bucket.set("users.get", { nats: 25, shadow: 10, ...by });
    return { nats: 30, shadow: live.shadow, ...by };
  });
  t.equal(builds, 2, "built again on the newer value");
  t.match(written, { nats: 30, shadow: 10 });
  const history = await bucket.history("users.get");
  t.match(history.at(-2), { nats: 25, shadow: 10 }, "A's write is kept in the history");
});

t.test("a change that keeps losing the race is a conflict, not a blind overwrite", async (t) => {
  const overtaken = bucket.change(routeNamed("users.get"), () => {
    void bucket.set("users.get", { nats: 1, shadow: 0, ...by });
    return { nats: 30, shadow: 0, ...by };
  });
  await t.rejects(overtaken, { code: "TURNOUT_ERR_CUTOVER_CONFLICT" });
});

t.test("list and set skip a malformed or refused value as the replicas do", async (t) => {
  await bucket.set("users.get", { nats: 20, shadow: 15, ...by });
  await bucket.set("users.create", { nats: 5, shadow: 0, ...by });
  await bucket.kv.put("users.get", JSON.stringify({ nats: 50.125, shadow: 0 }));
  await bucket.set("users.create", { nats: 30, shadow: 50, ...by }); // shadow on a write route
  t.ok(await within(1000, () => a.cutover.of("users.create").nats === 5));

  const list = await cli("list");
  t.equal(list.code, 0, list.stderr);
  t.match(list.stdout, /^users\.get\s+20\s+15\s+live/m);
  t.match(list.stdout, /^users\.create\s+5\s+0\s+live/m);

  const set = await cli("set", "users.get", "--nats", "45", "--reason", "step");
  t.equal(set.code, 0, set.stderr);
  t.match(set.stdout, /nats 45% shadow 15%/, "keeps the fleet's running shadow");
});
