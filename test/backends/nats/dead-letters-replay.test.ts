/**
 * Replaying dead letters while other replayers run (API calls, the CLI, other
 * replicas), letters' header bytes, and the `since` seek.
 */
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, Empty, headers, type Msg } from "@nats-io/transport-node";
import type protobuf from "protobufjs";
import t, { type Test } from "tap";
import {
  DLQ_CLAIM_MARGIN_MS,
  DLQ_CLAIM_PREFIX,
  DLQ_CLAIMS_STREAM,
  DLQ_MAX_BYTES,
  DLQ_STREAM,
  ensureClaimsStream,
  listDeadLetters,
  type ReplayOutcome,
  replayDeadLetters,
} from "../../../src/backends/nats/dead-letters.js";
import { call, within } from "../../helpers/cutover-fixture.js";
import { ordersGetRoute } from "../../helpers/route-yaml.js";
import { startStack, writeRoutes } from "../../helpers/stack.js";

const TOKEN = "dlq-replay-token";
const stack = await startStack(
  t,
  writeRoutes(ordersGetRoute({ headers: "[x-tenant]", cutover: "{ nats: 100, shadow: 0 }" })),
  { jetstream: true, adminToken: TOKEN },
);
const gw = stack.gateway;
await gw.deadLetters.ensureStream();
const jsm = await jetstreamManager(stack.nc);
const getType = stack.root.lookupType("orders.v1.GetOrderRequest");
const orderType = stack.root.lookupType("orders.v1.Order");

/** Each test starts from an empty stream and makes the letters it needs. */
async function letters(...ids: string[]): Promise<number[]> {
  await jsm.streams.purge(DLQ_STREAM);
  const before = gw.metrics.deadLetters.cell("orders.get").value;
  for (const id of ids) {
    const res = await fetch(`${gw.url}/v1/orders/${id}`, {
      headers: { "x-request-id": `req-${id}`, "x-tenant": "acme" },
    });
    await res.arrayBuffer();
  }
  const stored = () => gw.metrics.deadLetters.cell("orders.get").value === before + ids.length;
  if (!(await within(3000, stored))) throw new Error("letters not stored");
  return (await listDeadLetters(stack.nc)).map((letter) => letter.seq);
}

/** A worker for svc.orders.get answering after `delayMs`; keeps what it received. */
function startWorker(t: Test, delayMs = 0): Msg[] {
  const seen: Msg[] = [];
  const sub = stack.nc.subscribe("svc.orders.get", {
    callback: (_err, msg) => {
      seen.push(msg);
      const { id } = getType.decode(msg.data) as protobuf.Message & { id: string };
      const reply = orderType.encode(orderType.fromObject({ id })).finish();
      setTimeout(() => msg.respond(reply), delayMs);
    },
  });
  t.teardown(() => sub.unsubscribe());
  return seen;
}

const replayThroughApi = () =>
  call(`${gw.adminUrl}/admin/dlq/replay`, { method: "POST", body: "{}", token: TOKEN });

t.test(
  "two replays at once send each letter once; the other reports it skipped, not failed",
  async (t) => {
    const seqs = await letters("c-1", "c-2", "c-3");
    // Slow answers, so that the two replays overlap on every letter.
    const seen = startWorker(t, 100);
    await stack.nc.flush();
    const [a, b] = await Promise.all([replayThroughApi(), replayThroughApi()]);
    t.equal(a.status, 200);
    t.equal(b.status, 200);
    t.equal(seen.length, 3, "the worker got each letter once, not twice");
    const outcomes = [a, b].flatMap((answer) => answer.body.outcomes as ReplayOutcome[]);
    t.same(
      outcomes.filter((o) => o.result === "failed"),
      [],
      "no success reported as a failure",
    );
    for (const seq of seqs) {
      const ok = outcomes.filter((o) => o.seq === seq && o.result === "ok");
      t.equal(ok.length, 1, `letter ${seq} was re-sent by one replay`);
    }
    for (const o of outcomes.filter((o) => o.result !== "ok")) {
      t.match(o, { result: "skipped", message: /another replay/ });
    }
    t.same(await listDeadLetters(stack.nc), [], "every letter deleted");
    t.equal((await jsm.streams.info(DLQ_CLAIMS_STREAM)).state.messages, 0, "no claim left behind");
  },
);

t.test(
  "a claim left by a replayer that died holds its letter until it is older than the letter's timeout plus the margin",
  async (t) => {
    const [seq] = await letters("c-4");
    const seen = startWorker(t);
    await stack.nc.flush();
    // What a replayer that died after its claim leaves behind.
    await ensureClaimsStream(stack.nc, jsm);
    await jetstream(stack.nc).publish(`${DLQ_CLAIM_PREFIX}${seq}`, Empty);
    const held = await replayDeadLetters(stack.nc, { timeoutOf: () => 300 });
    t.match(held.outcomes, [{ seq, result: "skipped" }]);
    t.equal(seen.length, 0, "not sent while the claim may still be alive");
    t.equal((await listDeadLetters(stack.nc)).length, 1, "kept, and the claim is not listed");

    const later = Date.now() + 300 + DLQ_CLAIM_MARGIN_MS + 1000;
    const taken = await replayDeadLetters(stack.nc, { timeoutOf: () => 300, now: () => later });
    t.match(taken.outcomes, [{ seq, result: "ok", status: 200 }]);
    t.equal(seen.length, 1, "sent once the claim is stale");
    t.equal((await jsm.streams.info(DLQ_STREAM)).state.messages, 0, "letter gone");
    t.equal((await jsm.streams.info(DLQ_CLAIMS_STREAM)).state.messages, 0, "claims gone");
  },
);

t.test(
  "a replay of a full stream re-sends its oldest letter: the claim does not push it out",
  async (t) => {
    const [oldest, ...rest] = await letters("f-1", "f-2", "f-3");
    // Full as a storm leaves it: less room than one more message takes.
    const full = (await jsm.streams.info(DLQ_STREAM)).state.bytes + 10;
    await jsm.streams.update(DLQ_STREAM, { max_bytes: full });
    t.teardown(() => jsm.streams.update(DLQ_STREAM, { max_bytes: DLQ_MAX_BYTES }));
    const seen = startWorker(t);
    await stack.nc.flush();
    const replay = await replayDeadLetters(stack.nc, { limit: 1 });
    t.match(replay.outcomes, [{ seq: oldest, result: "ok", status: 200 }]);
    t.same(
      seen.map((msg) => msg.headers?.get("X-Request-Id")),
      ["req-f-1"],
      "the worker got it",
    );
    t.same(
      (await listDeadLetters(stack.nc)).map((letter) => letter.seq),
      rest,
      "the others are kept",
    );
  },
);

t.test(
  "a letter keeps non-ASCII header values as the client sent them and replays them so",
  async (t) => {
    await jsm.streams.purge(DLQ_STREAM);
    const before = gw.metrics.deadLetters.cell("orders.get").value;
    // Node hands header values over as latin1: one char per byte the client sent.
    const asSent = Buffer.from("café voilà", "utf8").toString("latin1");
    await (await fetch(`${gw.url}/v1/orders/c-5`, { headers: { "x-tenant": asSent } })).text();
    t.ok(await within(3000, () => gw.metrics.deadLetters.cell("orders.get").value > before));
    const [letter] = await listDeadLetters(stack.nc);
    t.same(letter!.headers["x-tenant"], ["café voilà"], "not the double-encoded cafÃ©");
    const seen = startWorker(t);
    await stack.nc.flush();
    await replayDeadLetters(stack.nc);
    t.equal(seen[0]?.headers?.get("x-tenant"), "café voilà", "the worker gets the same bytes");
  },
);

/** Counts JetStream API requests on the test's server, seen by a subscriber of its own. */
async function jetStreamApiCalls(t: Test): Promise<() => Promise<number>> {
  const spy = await connect({ servers: stack.server.url });
  t.teardown(() => spy.close());
  let calls = 0;
  spy.subscribe("$JS.API.>", {
    callback: () => {
      calls++;
    },
  });
  await spy.flush();
  return async () => {
    await spy.flush();
    return calls;
  };
}

async function storeLetters(from: number, count: number): Promise<void> {
  const js = jetstream(stack.nc);
  const acks: Promise<unknown>[] = [];
  for (let i = from; i < from + count; i++) {
    const h = headers();
    h.set("Turnout-Route", "orders.get");
    h.set("X-Request-Id", `seek-${i}`);
    h.set("Turnout-Subject", "svc.orders.get");
    acks.push(
      js.publish("turnout.dlq.orders.get", getType.encode({ id: `o-${i}` }).finish(), {
        headers: h,
      }),
    );
  }
  await Promise.all(acks);
}

t.test(
  "since finds the first letter by a binary search instead of reading every older one",
  async (t) => {
    await jsm.streams.purge(DLQ_STREAM);
    await storeLetters(0, 400);
    // Apart in time from the letters around it, whatever the clock's resolution.
    await new Promise((resolve) => setTimeout(resolve, 20));
    const since = new Date();
    await new Promise((resolve) => setTimeout(resolve, 20));
    await storeLetters(400, 2);
    const calls = await jetStreamApiCalls(t);
    const before = await calls();
    const found = await listDeadLetters(stack.nc, { since });
    t.same(
      found.map((letter) => letter.requestId),
      ["seek-400", "seek-401"],
    );
    const used = (await calls()) - before;
    t.ok(used < 30, `${used} JetStream API calls for 402 letters (a walk reads all 402)`);

    const listed = await call(
      `${gw.adminUrl}/admin/dlq?route=orders.get&since=${since.toISOString()}`,
      { token: TOKEN },
    );
    t.same(
      (listed.body.deadLetters as Array<{ requestId: string }>).map((l) => l.requestId),
      ["seek-400", "seek-401"],
      "the admin API seeks the same way",
    );
  },
);
