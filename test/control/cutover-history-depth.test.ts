/**
 * A `turnout_cutover` bucket made by hand before the gateway first ran
 * (`nats kv add` keeps 1 revision per key) is raised to the 64 revisions the
 * audit log and rollback need, and the store says so; when it cannot be
 * raised the store says that, and why, and runs anyway.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import t from "tap";
import { loadConfigAndProtos } from "../../src/config/load.js";
import type { RouteConfig } from "../../src/config/types.js";
import { CutoverState } from "../../src/control/cutover-state.js";
import { CUTOVER_BUCKET, CUTOVER_HISTORY, CutoverStore } from "../../src/control/cutover-store.js";
import { startNatsServer } from "../../src/devtools/nats-server.js";
import { cutoverRoutes, within } from "../helpers/cutover-fixture.js";

const server = await startNatsServer({ jetstream: true });
t.teardown(() => server.stop());
const { config } = loadConfigAndProtos(cutoverRoutes(), {});
const route = config.routes.find((r) => r.name === "users.get") as RouteConfig;

t.test(
  "a cutover bucket made with history 1 is raised to 64 revisions with a warning, so a rollback finds the value before",
  async (t) => {
    const nc = await connect({ servers: server.url });
    t.teardown(() => nc.close());
    await new Kvm(nc).create(CUTOVER_BUCKET, { history: 1 });

    const warnings: string[] = [];
    const log = { info: () => {}, warn: (line: string) => void warnings.push(line) };
    const state = new CutoverState(config.routes);
    const store = new CutoverStore(state, config.routes, log, { retryMs: 20 });
    store.start(nc);
    t.teardown(() => store.stop());
    t.ok(await within(5000, () => store.mode === "live"), "the store loads");
    t.match(
      warnings.join("\n"),
      /cutover: the KV bucket turnout_cutover kept 1 revision\(s\) per key; raised to 64/,
    );
    const bucket = store.bucket;
    if (bucket === undefined) throw new Error("no bucket");
    t.equal((await bucket.kv.status()).history, CUTOVER_HISTORY, "the bucket keeps 64 now");

    await bucket.change(route, () => ({ nats: 20, shadow: 0, by: "alice", reason: "one" }));
    await bucket.change(route, () => ({ nats: 30, shadow: 0, by: "alice", reason: "two" }));
    const { from, to } = await bucket.rollback(route, { by: "bob", reason: "undo" });
    t.match(from, { nats: 30, reason: "two" });
    t.match(to, { nats: 20, by: "bob", reason: /^rollback of \S+: undo$/ });
    t.same(
      (await bucket.history(route.name)).map((row) => (row.kind === "value" ? row.nats : row.kind)),
      [10, 20, 30, 20],
      "the seed, both changes and the rollback are in the history",
    );
    t.ok(await within(1000, () => state.of(route.name).nats === 20), "the store applies it");
  },
);

t.test(
  "a cutover bucket whose history cannot be raised is used anyway, with a warning that history and rollback are limited and why",
  async (t) => {
    // A gateway user that may not update streams: the raise is refused.
    const dir = mkdtempSync(join(tmpdir(), "turnout-perm-"));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const conf = join(dir, "nats.conf");
    writeFileSync(
      conf,
      `authorization { users = [
  { user: admin, password: admin }
  { user: gw, password: gw, permissions: {
      publish: { allow: [">"], deny: ["$JS.API.STREAM.UPDATE.>"] }, subscribe: { allow: [">"] } } }
] }
`,
    );
    const locked = await startNatsServer({ jetstream: true, args: ["-c", conf] });
    t.teardown(() => locked.stop());
    const admin = await connect({ servers: locked.url, user: "admin", pass: "admin" });
    t.teardown(() => admin.close());
    await new Kvm(admin).create(CUTOVER_BUCKET, { history: 1 });

    const nc = await connect({ servers: locked.url, user: "gw", pass: "gw" });
    t.teardown(() => nc.close());
    const warnings: string[] = [];
    const log = { info: () => {}, warn: (line: string) => void warnings.push(line) };
    const store = new CutoverStore(new CutoverState(config.routes), config.routes, log, {
      retryMs: 20,
    });
    store.start(nc);
    t.teardown(() => store.stop());
    t.ok(await within(5000, () => store.mode === "live"), "the store loads all the same");
    t.match(
      warnings.join("\n"),
      /cutover: the KV bucket turnout_cutover keeps 1 revision\(s\) per key and raising it to 64 failed \(Permissions Violation[^)]*\): its history shows only the last 1, and a rollback finds no value older than those/,
    );
  },
);
