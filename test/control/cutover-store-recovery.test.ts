/**
 * A running CutoverStore whose KV bucket goes away (the server restarted with
 * an empty store, or the bucket deleted and re-created) notices, reloads, and
 * applies the values written to the new bucket: the KV watch alone goes silent
 * and a re-created bucket numbers its revisions from 1 again.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import t, { type Test } from "tap";
import { loadConfigAndProtos } from "../../src/config/load.js";
import { RESEED_BY } from "../../src/control/cutover-rules.js";
import { CutoverState } from "../../src/control/cutover-state.js";
import {
  CUTOVER_BUCKET,
  CutoverBucket,
  CutoverStore,
  type CutoverStoreOptions,
} from "../../src/control/cutover-store.js";
import { freePort, type NatsServer, startNatsServer } from "../../src/devtools/nats-server.js";
import { cutoverRoutes, within } from "../helpers/cutover-fixture.js";

/** The longest a replica may take to apply a value written to the new bucket. */
const RECOVERY_MS = 10_000;

/** A store following `url` until the test ends, once it has loaded the live state. */
async function liveStore(t: Test, url: string, options: CutoverStoreOptions) {
  const nc = await connect({ servers: url, maxReconnectAttempts: -1, reconnectTimeWait: 50 });
  t.teardown(() => nc.close());
  const { config } = loadConfigAndProtos(cutoverRoutes(), {});
  const state = new CutoverState(config.routes);
  const warnings: string[] = [];
  const log = { info: () => {}, warn: (line: string) => warnings.push(line) };
  const store = new CutoverStore(state, config.routes, log, { retryMs: 20, ...options });
  store.start(nc);
  t.teardown(() => store.stop());
  t.ok(await within(5000, () => store.mode === "live"), "loads the live state");
  return { state, warnings, store };
}

/** Writes users.get's values the way `turnout cutover set` does, over a connection of its own. */
async function setUsersGet(t: Test, url: string, nats: number): Promise<void> {
  const writer = await connect({ servers: url });
  t.teardown(() => writer.close());
  const bucket = await CutoverBucket.open(writer);
  await bucket.set("users.get", { nats, shadow: 0, by: "op", reason: `to ${nats}` });
}

function applies(state: CutoverState, nats: number): () => boolean {
  return () => state.of("users.get").nats === nats && state.of("users.get").source === "live";
}

/** A JetStream server on `port` whose store directory the test owns (it outlives a restart). */
async function serverWithStore(t: Test, port: number, storeDir: string): Promise<NatsServer> {
  const server = await startNatsServer({ port, jetstream: true, storeDir });
  t.teardown(() => server.stop());
  return server;
}

async function restartWithEmptyStore(t: Test, server: NatsServer, storeDir: string) {
  await server.stop();
  rmSync(storeDir, { recursive: true, force: true });
  return serverWithStore(t, server.port, storeDir);
}

/** A JetStream server and an operator's handle on the bucket, until the test ends. */
async function serverAndBucket(t: Test) {
  const server = await startNatsServer({ jetstream: true });
  t.teardown(() => server.stop());
  const operator = await connect({ servers: server.url });
  t.teardown(() => operator.close());
  return { server, operator, bucket: await CutoverBucket.open(operator) };
}

type HistoryRead = () => Promise<AsyncIterable<unknown>>;

/** Runs every KV history read (the store's too) through `around` until the test ends. */
function aroundHistoryReads(
  t: Test,
  bucket: CutoverBucket,
  around: (read: HistoryRead, key: string | undefined) => Promise<AsyncIterable<unknown>>,
): void {
  type History = (this: unknown, opts: { key?: string }) => Promise<AsyncIterable<unknown>>;
  const kvClass = Object.getPrototypeOf(bucket.kv) as { history: History };
  const history = kvClass.history;
  kvClass.history = function (opts) {
    return around(() => history.call(this, opts), opts.key);
  };
  t.teardown(() => {
    kvClass.history = history;
  });
}

function ownStoreDir(t: Test): string {
  const storeDir = mkdtempSync(join(tmpdir(), "turnout-recovery-"));
  t.teardown(() => rmSync(storeDir, { recursive: true, force: true }));
  return storeDir;
}

t.test("a server restarted with an empty store: the store follows the new bucket", async (t) => {
  const storeDir = ownStoreDir(t);
  const server = await serverWithStore(t, await freePort(), storeDir);
  const { state, warnings, store } = await liveStore(t, server.url, { checkMs: 150 });
  await setUsersGet(t, server.url, 50);
  t.ok(await within(5000, applies(state, 50)), "applies a value before the restart");

  const restarted = await restartWithEmptyStore(t, server, storeDir);
  t.ok(
    await within(RECOVERY_MS, () => store.latest("users.get")?.by === RESEED_BY),
    "re-seeds routes.yaml's values by turnout, which pauses plans",
  );
  t.match(store.latest("users.get"), {
    nats: 10,
    reason:
      /^routes\.yaml's values: the KV bucket is gone .*; its plan waits for a value set --by plan$/,
  });
  await setUsersGet(t, restarted.url, 0);
  t.ok(await within(RECOVERY_MS, applies(state, 0)), "applies a value written after it");
  t.match(warnings.join("\n"), /KV bucket turnout_cutover .*; reloading/, "says it reloaded");
});

t.test("a bucket deleted and re-created while the server runs", async (t) => {
  const server = await startNatsServer({ jetstream: true });
  t.teardown(() => server.stop());
  const { state } = await liveStore(t, server.url, { checkMs: 150 });
  await setUsersGet(t, server.url, 50);
  t.ok(await within(5000, applies(state, 50)), "applies a value before the deletion");

  const operator = await connect({ servers: server.url });
  t.teardown(() => operator.close());
  const jsm = await jetstreamManager(operator);
  await jsm.streams.delete(`KV_${CUTOVER_BUCKET}`);
  await setUsersGet(t, server.url, 0);
  t.ok(await within(RECOVERY_MS, applies(state, 0)), "applies a value written to the new bucket");
});

t.test("a reconnect checks the bucket at once, not at the next periodic check", async (t) => {
  const storeDir = ownStoreDir(t);
  const server = await serverWithStore(t, await freePort(), storeDir);
  const { state } = await liveStore(t, server.url, { checkMs: 60_000 });
  await setUsersGet(t, server.url, 50);
  t.ok(await within(5000, applies(state, 50)), "applies a value before the restart");

  const restarted = await restartWithEmptyStore(t, server, storeDir);
  await setUsersGet(t, restarted.url, 0);
  t.ok(await within(RECOVERY_MS, applies(state, 0)), "applies a value written after it");
});

t.test(
  "a watch that stalls (its consumer lost, as with a cluster node) is noticed and reloaded",
  async (t) => {
    const server = await startNatsServer({ jetstream: true });
    t.teardown(() => server.stop());
    const { state, warnings } = await liveStore(t, server.url, { checkMs: 150 });
    await setUsersGet(t, server.url, 50);
    t.ok(await within(5000, applies(state, 50)), "applies a value through the watch");

    // Deleted on the server, the watch's consumer stays silent: nats.js does not notice.
    const operator = await connect({ servers: server.url });
    t.teardown(() => operator.close());
    const jsm = await jetstreamManager(operator);
    for await (const consumer of jsm.consumers.list(`KV_${CUTOVER_BUCKET}`)) {
      await jsm.consumers.delete(`KV_${CUTOVER_BUCKET}`, consumer.name);
    }
    await setUsersGet(t, server.url, 0);
    t.ok(await within(RECOVERY_MS, applies(state, 0)), "applies the value written after it");
    t.match(
      warnings.join("\n"),
      /the KV watch stalled \(delivered up to rev \d+, the bucket holds rev \d+\); reloading/,
    );
  },
);

t.test(
  "a reload for a stalled watch that lands on a re-created bucket follows it, revisions from 1 again",
  async (t) => {
    const server = await startNatsServer({ jetstream: true });
    t.teardown(() => server.stop());
    const { state, warnings, store } = await liveStore(t, server.url, { checkMs: 150 });
    await setUsersGet(t, server.url, 50);
    t.ok(await within(5000, applies(state, 50)), "applies a value through the watch");

    const operator = await connect({ servers: server.url });
    t.teardown(() => operator.close());
    const jsm = await jetstreamManager(operator);
    const stream = `KV_${CUTOVER_BUCKET}`;
    // The bucket is deleted right after the check that finds the watch stalled
    // has read it: that check reloads for the stall, onto a bucket made anew.
    const kv = store.bucket!.kv as unknown as { status: () => Promise<unknown> };
    const status = kv.status.bind(kv);
    let checks = -1;
    kv.status = async () => {
      const answer = await status();
      if (checks >= 0 && ++checks === 2) await jsm.streams.delete(stream);
      return answer;
    };
    for await (const consumer of jsm.consumers.list(stream)) {
      await jsm.consumers.delete(stream, consumer.name);
    }
    await setUsersGet(t, server.url, 30);
    checks = 0;
    t.ok(await within(RECOVERY_MS, () => warnings.some((w) => /watch stalled/.test(w))));
    t.ok(
      await within(RECOVERY_MS, () => store.latest("users.get")?.by === RESEED_BY),
      "seeds the new bucket by turnout: plans pause",
    );
    await setUsersGet(t, server.url, 0);
    t.ok(await within(RECOVERY_MS, applies(state, 0)), "applies a low revision of the new bucket");
  },
);

t.test(
  "a first load that fails half way and retries on a re-created bucket drops the old bucket's revisions",
  async (t) => {
    const { server, operator, bucket: old } = await serverAndBucket(t);
    // users.get reaches a revision the new bucket's first writes stay below.
    for (let nats = 41; nats <= 48; nats++) {
      await old.set("users.get", { nats, shadow: 0, by: "op", reason: `to ${nats}` });
    }
    await old.set("users.create", { nats: 5, shadow: 0, by: "op", reason: "to 5" });
    // The load reads users.get, then the bucket is lost as users.create's read fails.
    let lost = false;
    aroundHistoryReads(t, old, async (read, key) => {
      if (lost || key !== "users.create") return read();
      lost = true;
      await (await jetstreamManager(operator)).streams.delete(`KV_${CUTOVER_BUCKET}`);
      throw new Error("the read timed out");
    });

    const { state } = await liveStore(t, server.url, { checkMs: 150 });
    t.ok(lost, "the first load failed half way");
    t.equal(state.of("users.get").nats, 10, "applies the new bucket's value, not the lost 48");
    await setUsersGet(t, server.url, 0);
    t.ok(await within(RECOVERY_MS, applies(state, 0)), "applies the next change to the new bucket");
  },
);

t.test(
  "a delete landing between a seed's read and its apply wins: the replica goes back to routes.yaml's values",
  async (t) => {
    const { server, bucket } = await serverAndBucket(t);
    await bucket.set("users.get", { nats: 50, shadow: 0, by: "op", reason: "to 50" });
    // The seed has read users.get's history when the delete lands; the watch delivers it first.
    let deleted = false;
    aroundHistoryReads(t, bucket, async (read, key) => {
      const entries: unknown[] = [];
      for await (const entry of await read()) entries.push(entry);
      if (!deleted && key === "users.get") {
        deleted = true;
        await bucket.kv.delete("users.get");
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
      return (async function* () {
        yield* entries;
      })();
    });

    const { state } = await liveStore(t, server.url, { checkMs: 100 });
    t.ok(deleted, "the delete landed during the seed");
    t.same(
      { nats: state.of("users.get").nats, source: state.of("users.get").source },
      { nats: 10, source: "file" },
    );
    await setUsersGet(t, server.url, 30);
    t.ok(await within(RECOVERY_MS, applies(state, 30)), "a later value applies");
  },
);
