import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kvm } from "@nats-io/kv";
import { errors } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import t from "tap";
import { loadConfigAndProtos } from "../../src/config/load.js";
import { CutoverState } from "../../src/control/cutover-state.js";
import { CUTOVER_BUCKET, CutoverBucket, CutoverStore } from "../../src/control/cutover-store.js";
import { freePort, startNatsServer } from "../../src/devtools/nats-server.js";
import { call, cutoverRoutes, TOKEN, within } from "../helpers/cutover-fixture.js";
import { startLoopbackGateway, startStack } from "../helpers/stack.js";

const routesFile = cutoverRoutes();

async function gatewayOn(natsUrl: string) {
  const { config, root } = loadConfigAndProtos(routesFile, { natsUrl });
  return startLoopbackGateway({ config, root, adminToken: TOKEN });
}

t.test(
  "a restarted replica takes the live values, not the file's, and is 503 until it has them",
  async (t) => {
    const storeDir = mkdtempSync(join(tmpdir(), "turnout-cutover-js-"));
    t.teardown(() => rmSync(storeDir, { recursive: true, force: true }));
    const port = await freePort();
    const first = await startNatsServer({ port, jetstream: true, storeDir });
    const before = await gatewayOn(first.url);
    await before.connected;
    t.ok(await within(5000, () => before.cutoverStore.mode === "live"), "first replica loads");
    const put = await call(`${before.adminUrl}/admin/routes/users.get/cutover`, {
      method: "PUT",
      body: JSON.stringify({ nats: 64.25, shadow: 0, reason: "before the restart" }),
    });
    t.equal(put.status, 200);
    await before.close();
    await first.stop();

    // NATS is down: the restarted replica listens but must not be ready.
    const after = await gatewayOn(`nats://127.0.0.1:${port}`);
    t.teardown(() => after.close());
    const waiting = await call(`${after.adminUrl}/readyz`);
    t.equal(waiting.status, 503);
    t.ok(
      (waiting.body.reasons as string[]).includes("live cutover state not loaded yet"),
      "names the missing live state",
    );
    t.equal(after.cutover.of("users.get").nats, 10, "file values until loaded");

    const second = await startNatsServer({ port, jetstream: true, storeDir });
    t.teardown(() => second.stop());
    await after.connected;
    t.ok(
      await within(5000, async () => (await call(`${after.adminUrl}/readyz`)).status === 200),
      "ready once the live state is loaded",
    );
    t.equal(after.cutover.of("users.get").nats, 64.25, "takes the live value");
    t.equal(after.cutover.of("users.get").source, "live");
  },
);

t.test(
  "a replica's watch survives a NATS restart: a change made after it still arrives",
  async (t) => {
    const storeDir = mkdtempSync(join(tmpdir(), "turnout-cutover-js-"));
    t.teardown(() => rmSync(storeDir, { recursive: true, force: true }));
    const port = await freePort();
    const first = await startNatsServer({ port, jetstream: true, storeDir });
    const watcher = await gatewayOn(first.url);
    t.teardown(() => watcher.close());
    await watcher.connected;
    t.ok(await within(5000, () => watcher.cutoverStore.mode === "live"), "watching");

    await first.stop();
    t.ok(
      await within(5000, async () => (await call(`${watcher.adminUrl}/readyz`)).status === 503),
      "sees NATS go",
    );
    const second = await startNatsServer({ port, jetstream: true, storeDir });
    t.teardown(() => second.stop());
    t.ok(
      await within(10_000, async () => (await call(`${watcher.adminUrl}/readyz`)).status === 200),
      "ready again after the restart",
    );

    // The change goes through another replica, so only the watch can bring it.
    const writer = await gatewayOn(second.url);
    t.teardown(() => writer.close());
    await writer.connected;
    t.ok(await within(5000, () => writer.cutoverStore.mode === "live"), "writer loads");
    const put = await call(`${writer.adminUrl}/admin/routes/users.get/cutover`, {
      method: "PUT",
      body: JSON.stringify({ nats: 37.5, shadow: 0, reason: "after the restart" }),
    });
    t.equal(put.status, 200);
    t.ok(
      await within(10_000, () => watcher.cutover.of("users.get").nats === 37.5),
      `the running replica applies it (has ${watcher.cutover.of("users.get").nats})`,
    );
  },
);

t.test(
  "without JetStream the gateway runs on the file's values and /readyz says so while staying 200",
  async (t) => {
    const stack = await startStack(t, routesFile, { jetstream: false, adminToken: TOKEN });
    const gw = stack.gateway;
    t.ok(await within(5000, () => gw.cutoverStore.mode === "file"), "falls back to the file");
    const ready = await call(`${gw.adminUrl}/readyz`);
    t.equal(ready.status, 200);
    t.match(ready.body, { status: "ready", notes: ["cutover: file values (no JetStream)"] });
    t.equal(gw.cutover.of("users.get").nats, 10);
    t.equal(gw.cutover.of("users.get").source, "file");
    const list = await call(`${gw.adminUrl}/admin/routes`);
    t.equal(list.body.cutover, "file");
    const put = await call(`${gw.adminUrl}/admin/routes/users.get/cutover`, {
      method: "PUT",
      body: JSON.stringify({ nats: 20, reason: "x" }),
    });
    t.equal(put.status, 503, "no live changes without JetStream");
    t.match(put.body.detail, /no JetStream/);
  },
);

t.test(
  "a malformed latest value in the bucket is skipped: a new replica applies the last good one and becomes ready",
  async (t) => {
    const server = await startNatsServer({ jetstream: true });
    t.teardown(() => server.stop());
    const first = await gatewayOn(server.url);
    t.teardown(() => first.close());
    t.ok(await within(5000, () => first.cutoverStore.mode === "live"), "first replica loads");
    const put = await call(`${first.adminUrl}/admin/routes/users.get/cutover`, {
      method: "PUT",
      body: JSON.stringify({ nats: 30, reason: "good value" }),
    });
    t.equal(put.status, 200);
    const nc = await connect({ servers: server.url });
    t.teardown(() => nc.close());
    const kv = await new Kvm(nc).open(CUTOVER_BUCKET);
    await kv.put("users.get", '{"nats":0}'); // no shadow: not a value Turnout reads
    // users.create's key holds nothing well formed at all.
    await kv.purge("users.create");
    await kv.create("users.create", "{");

    const { config, root } = loadConfigAndProtos(routesFile, { natsUrl: server.url });
    const second = await startLoopbackGateway({ config, root, adminToken: TOKEN });
    t.teardown(() => second.close());
    t.ok(
      await within(5000, async () => (await call(`${second.adminUrl}/readyz`)).status === 200),
      "ready despite the malformed values",
    );
    t.equal(second.cutover.of("users.get").nats, 30, "the last well-formed value applies");
    t.equal(second.cutover.of("users.create").nats, 0, "routes.yaml's value when none is good");
  },
);

t.test(
  "a KV read that times out at start keeps a replica not ready, not on routes.yaml's values: JetStream is there",
  async (t) => {
    const server = await startNatsServer({ jetstream: true });
    t.teardown(() => server.stop());
    const { config } = loadConfigAndProtos(routesFile, { natsUrl: server.url });
    const nc = await connect({ servers: server.url });
    t.teardown(() => nc.close());
    const writer = await CutoverBucket.open(nc);
    const route = config.routes.find((r) => r.name === "users.get")!;
    await writer.seed(route);
    await writer.set("users.get", { nats: 0, shadow: 0, by: "ops", reason: "back to legacy" });

    // The first history read times out, as a JetStream electing a leader would.
    const open = CutoverBucket.open;
    let failures = 1;
    CutoverBucket.open = (async (...args: Parameters<typeof open>) => {
      const bucket = await open(...args);
      const history = bucket.kv.history.bind(bucket.kv);
      bucket.kv.history = (async (...a: Parameters<typeof history>) => {
        if (failures-- > 0) throw new errors.TimeoutError();
        return history(...a);
      }) as typeof history;
      return bucket;
    }) as typeof open;
    t.teardown(() => {
      CutoverBucket.open = open;
    });

    const state = new CutoverState(config.routes);
    const lines: string[] = [];
    const log = { info: (m: string) => lines.push(m), warn: (m: string) => lines.push(m) };
    const store = new CutoverStore(state, config.routes, log, { retryMs: 1000 });
    t.teardown(() => store.stop());
    const modes = new Set<string>();
    const watching = setInterval(() => modes.add(store.mode), 5);
    t.teardown(() => clearInterval(watching));
    store.start(nc);
    t.ok(await within(1000, () => failures < 1), "the first read failed");
    t.notOk(
      lines.some((line) => /has no JetStream/.test(line)),
      "not taken for a server without JetStream",
    );
    t.ok(await within(5000, () => store.mode === "live"), "loaded on the retry");
    t.notOk(modes.has("file"), "never on the file's values meanwhile: not ready until loaded");
    t.equal(state.of("users.get").nats, 0, "the live value, never routes.yaml's");
  },
);
