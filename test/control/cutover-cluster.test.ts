/**
 * In a NATS cluster the cutover and lease buckets, and the dead-letter stream,
 * are replicated (up to 3 copies), so losing the server holding one does not
 * stop cutover changes or lose the letters.
 */
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import t from "tap";
import { DLQ_STREAM, ensureDlqStream } from "../../src/backends/nats/dead-letters.js";
import { CutoverBucket } from "../../src/control/cutover-store.js";
import { Lease } from "../../src/control/plan-lease.js";
import { freePorts, type NatsServer, startNatsServer } from "../../src/devtools/nats-server.js";

// Distinct: a route port handed out twice made a node fail to start (and the run fail).
const ports = await freePorts(6);
const clientPorts = ports.slice(0, 3);
const routePorts = ports.slice(3);
const nodes: NatsServer[] = [];
for (let i = 0; i < 3; i++) {
  const routes = routePorts
    .filter((_, j) => j !== i)
    .map((p) => `nats://127.0.0.1:${p}`)
    .join(",");
  const cluster = ["--cluster_name", "C", "--cluster", `nats://127.0.0.1:${routePorts[i]}`];
  const node = await startNatsServer({
    jetstream: true,
    port: clientPorts[i],
    args: [...cluster, "--routes", routes, "--server_name", `n${i}`],
  });
  nodes.push(node);
  t.teardown(() => node.stop());
}

/** Tries `fn` until it succeeds: the cluster elects its JetStream leaders first. */
async function eventually<T>(fn: () => Promise<T>, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      return await fn();
    } catch (error) {
      if (Date.now() >= end) throw error;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

async function connected(): Promise<NatsConnection> {
  const nc = await connect({ servers: nodes.map((n) => n.url), maxReconnectAttempts: -1 });
  t.teardown(() => nc.close());
  // connect_urls lists the cluster once the routes are up.
  await eventually(async () => {
    if ((nc.info?.connect_urls?.length ?? 0) < 3) throw new Error("cluster not formed yet");
  });
  return nc;
}

const nc = await connected();

t.test(
  "the lease bucket is replicated, and an older single-copy bucket is scaled up",
  async (t) => {
    const jsm = await eventually(() => jetstreamManager(nc));
    await eventually(() => Lease.open(nc, "r1", { ttlMs: 3000 }));
    const lease = await jsm.streams.info("KV_turnout_leases");
    t.equal(lease.config.num_replicas, 3, "three copies of the plan lease bucket");

    await eventually(() => new Kvm(nc).create("turnout_cutover_old", { history: 1 }));
    const { openReplicated } = await import("../../src/control/cutover-store.js");
    await eventually(() => openReplicated(nc, "turnout_cutover_old", 1));
    const old = await jsm.streams.info("KV_turnout_cutover_old");
    t.equal(old.config.num_replicas, 3, "scaled up from one copy to three");
  },
);

t.test(
  "the dead-letter stream is made with three copies, and an older single-copy one is scaled up",
  async (t) => {
    const jsm = await eventually(() => jetstreamManager(nc));
    await eventually(() => ensureDlqStream(nc));
    t.equal((await jsm.streams.info(DLQ_STREAM)).config.num_replicas, 3, "made with three");

    await jsm.streams.delete(DLQ_STREAM);
    await eventually(() => jsm.streams.add({ name: DLQ_STREAM, subjects: ["turnout.dlq.>"] }));
    t.equal((await jsm.streams.info(DLQ_STREAM)).config.num_replicas, 1, "one copy, by hand");
    await eventually(() => ensureDlqStream(nc));
    t.equal((await jsm.streams.info(DLQ_STREAM)).config.num_replicas, 3, "scaled up to three");
  },
);

t.test("the cutover bucket survives losing the server that leads it", async (t) => {
  const bucket = await eventually(() => CutoverBucket.open(nc));
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info("KV_turnout_cutover");
  t.equal(info.config.num_replicas, 3, "three copies of the cutover bucket");
  await eventually(() => bucket.set("users.get", { nats: 10, shadow: 0, by: "t", reason: "a" }));

  const leader = nodes[Number(info.cluster?.leader?.slice(1))];
  t.ok(leader, "the bucket has a leader");
  await leader!.stop();
  const written = await eventually(() =>
    bucket.set("users.get", { nats: 0, shadow: 0, by: "t", reason: "incident" }),
  );
  t.match(written, { nats: 0 }, "a change lands with the leading server down");
});
