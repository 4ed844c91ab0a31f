/**
 * CutoverBucket's failures against a real KV bucket: a rollback that loses a
 * race is a conflict (409, try again), while a KV call that could not be made
 * is a 503 naming what failed, never a bare 500. And a new replica's seed
 * picks the value running replicas and current() pick.
 */
import { connect } from "@nats-io/transport-node";
import t, { type Test } from "tap";
import { loadConfigAndProtos } from "../../src/config/load.js";
import type { RouteConfig } from "../../src/config/types.js";
import { CutoverState } from "../../src/control/cutover-state.js";
import { CutoverBucket, CutoverStore } from "../../src/control/cutover-store.js";
import { startNatsServer } from "../../src/devtools/nats-server.js";
import { cutoverRoutes, within } from "../helpers/cutover-fixture.js";

const server = await startNatsServer({ jetstream: true });
t.teardown(() => server.stop());

const { config } = loadConfigAndProtos(cutoverRoutes(), {});
const routeNamed = (name: string) => config.routes.find((r) => r.name === name) as RouteConfig;
const encoder = new TextEncoder();
/** A raw KV value, as another version or a hand-written tool may put it. */
const raw = (value: unknown) => encoder.encode(JSON.stringify(value));

async function bucketOn() {
  const nc = await connect({ servers: server.url });
  return { nc, bucket: await CutoverBucket.open(nc) };
}

const change = (nats: number) => ({ nats, shadow: 0, by: "test", reason: `to ${nats}` });

t.test("a rollback that another write overtakes is a conflict to try again", async (t) => {
  const { nc, bucket } = await bucketOn();
  t.teardown(() => nc.close());
  await bucket.set("race.get", change(10));
  await bucket.set("race.get", change(20));
  // The check runs between reading the history and writing: another replica writes then.
  const route = { ...routeNamed("users.get"), name: "race.get" };
  const racing = bucket.rollback(route, { by: "test", reason: undefined }, () => {
    void bucket.set("race.get", change(30));
  });
  await t.rejects(racing, {
    code: "TURNOUT_ERR_CUTOVER_CONFLICT",
    message: /changed while rolling back/,
  });
});

t.test("KV calls on a closed connection are 503s naming what could not be done", async (t) => {
  const { nc, bucket } = await bucketOn();
  await bucket.set("closed.get", change(10));
  await bucket.set("closed.get", change(20));
  await nc.close();
  await t.rejects(bucket.set("closed.get", change(30)), {
    code: "TURNOUT_ERR_CUTOVER_UNAVAILABLE",
    message: /cannot write the cutover of closed\.get/,
  });
  await t.rejects(bucket.history("closed.get"), {
    code: "TURNOUT_ERR_CUTOVER_UNAVAILABLE",
    message: /cannot read the cutover history of closed\.get/,
  });
});

/** A replica's store on its own connection, loaded; `warnings` collects what it logs. */
async function replicaStore(t: Test) {
  const nc = await connect({ servers: server.url });
  t.teardown(() => nc.close());
  const state = new CutoverState(config.routes);
  const warnings: string[] = [];
  const log = { info: () => {}, warn: (line: string) => void warnings.push(line) };
  const store = new CutoverStore(state, config.routes, log, { retryMs: 20 });
  store.start(nc);
  t.teardown(() => store.stop());
  t.ok(await within(5000, () => store.mode === "live"), "the store loads");
  return { state, store, warnings };
}

t.test(
  "a new replica leaves a deleted key deleted: routes.yaml's values, no fresh seed for a plan to run from",
  async (t) => {
    const { nc, bucket } = await bucketOn();
    t.teardown(() => nc.close());
    const route = routeNamed("users.get");
    await bucket.set(route.name, { nats: 40, shadow: 0, by: "bob", reason: "hold" });
    await bucket.kv.delete(route.name);
    const fresh = await replicaStore(t);
    t.same({ ...fresh.state.of(route.name) }, { nats: 10, shadow: 0, source: "file" });
    t.equal(fresh.store.latest(route.name), undefined);
    t.equal((await bucket.kv.get(route.name))?.operation, "DEL", "the key is still deleted");
  },
);

t.test(
  "a new replica after a latest value the route refuses applies what running replicas and current() apply",
  async (t) => {
    const { nc, bucket } = await bucketOn();
    t.teardown(() => nc.close());
    const running = await replicaStore(t);
    const route = routeNamed("users.create");
    await bucket.set(route.name, { nats: 25, shadow: 0, by: "alice", reason: "canary" });
    // A shadow on a write route without shadowWrites: every replica refuses it.
    const at = new Date().toISOString();
    await bucket.kv.put(route.name, raw({ nats: 50, shadow: 10, by: "old", reason: "x", at }));
    t.ok(
      await within(5000, () => running.state.of(route.name).nats === 25),
      "a running replica applies 25 and skips the refused value",
    );
    const current = await bucket.current(route);
    t.match(current, { nats: 25, shadow: 0, by: "alice" }, "current() skips it too");

    const fresh = await replicaStore(t);
    t.match({ ...fresh.state.of(route.name) }, { nats: 25, shadow: 0, source: "live" });
    t.equal(fresh.store.latest(route.name)?.revision, current?.revision, "the same revision");
    t.match(
      fresh.warnings.join("\n"),
      /ignoring users\.create rev \d+ \(shadow route users\.create is not idempotent[^)]*\); applying rev \d+/,
    );
  },
);

t.test(
  "after a delete, a new replica does not bring the deleted value back from the history",
  async (t) => {
    const { nc, bucket } = await bucketOn();
    t.teardown(() => nc.close());
    const running = await replicaStore(t);
    const route = routeNamed("users.get");
    await bucket.set(route.name, { nats: 60, shadow: 0, by: "bob", reason: "sixty" });
    await bucket.kv.delete(route.name);
    // Not well formed: replicas skip it and keep routes.yaml's values.
    const at = new Date().toISOString();
    await bucket.kv.put(route.name, raw({ nats: "lots", shadow: 0, by: "tool", reason: "x", at }));
    t.ok(
      await within(5000, () => running.state.of(route.name).source === "file"),
      "a running replica is back on routes.yaml's values",
    );
    t.equal(await bucket.current(route), undefined, "current(): routes.yaml's values");

    const fresh = await replicaStore(t);
    t.same({ ...fresh.state.of(route.name) }, { nats: 10, shadow: 0, source: "file" });
    t.equal(fresh.store.latest(route.name), undefined);
    t.match(
      fresh.warnings.join("\n"),
      /ignoring users\.get rev \d+ \(malformed\); applying routes\.yaml's values/,
    );
  },
);
