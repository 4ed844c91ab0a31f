import { jetstreamManager } from "@nats-io/jetstream";
import type { Msg } from "@nats-io/transport-node";
import type protobuf from "protobufjs";
import t from "tap";
import { DLQ_STREAM, listDeadLetters } from "../../../src/backends/nats/dead-letters.js";
import { call, within } from "../../helpers/cutover-fixture.js";
import { ordersGetRoute } from "../../helpers/route-yaml.js";
import { startStack, writeRoutes } from "../../helpers/stack.js";

const TOKEN = "dlq-test-token";
const routesFile = writeRoutes(
  ordersGetRoute({ headers: "[x-tenant]", cutover: "{ nats: 100, shadow: 0 }" }),
);
const stack = await startStack(t, routesFile, { jetstream: true, adminToken: TOKEN });
const gw = stack.gateway;
const getType = stack.root.lookupType("orders.v1.GetOrderRequest");
const orderType = stack.root.lookupType("orders.v1.Order");

function deadLetterCount(): number {
  return gw.metrics.deadLetters.cell("orders.get").value;
}

/** A worker for svc.orders.get that keeps what it received. */
function startWorker(): { seen: Msg[]; stop: () => void } {
  const seen: Msg[] = [];
  const sub = stack.nc.subscribe("svc.orders.get", {
    callback: (_err, msg) => {
      seen.push(msg);
      const { id } = getType.decode(msg.data) as protobuf.Message & { id: string };
      msg.respond(orderType.encode(orderType.fromObject({ id, status: "PAID" })).finish());
    },
  });
  return { seen, stop: () => sub.unsubscribe() };
}

async function failOne(id: string): Promise<Response> {
  return fetch(`${gw.url}/v1/orders/${id}`, {
    headers: { "x-tenant": "acme", "x-request-id": `req-${id}` },
  });
}

t.test(
  "a request with no worker and no legacy is answered 503 and kept in TURNOUT_DLQ",
  async (t) => {
    const res = await failOne("o-1");
    t.equal(res.status, 503);
    t.match(await res.json(), { code: "TURNOUT_ERR_NO_RESPONDERS" });
    t.ok(
      await within(3000, () => deadLetterCount() === 1),
      "counted in turnout_dead_letters_total",
    );

    const jsm = await jetstreamManager(stack.nc);
    const info = await jsm.streams.info(DLQ_STREAM);
    t.equal(info.config.max_age, 7 * 24 * 3600 * 1e9, "bounded by age");
    t.equal(info.config.max_bytes, 1024 ** 3, "bounded by size");

    const letters = await listDeadLetters(stack.nc, { route: "orders.get" });
    t.equal(letters.length, 1);
    const letter = letters[0]!;
    t.equal(letter.route, "orders.get");
    t.equal(letter.requestId, "req-o-1");
    t.equal(letter.subject, "svc.orders.get");
    t.equal(letter.errorCode, "TURNOUT_ERR_NO_RESPONDERS");
    t.ok(letter.error.length > 0);
    t.same(letter.headers["x-tenant"], ["acme"], "the forwarded request header is kept");
    const body = getType.decode(Buffer.from(letter.body, "base64")) as protobuf.Message & {
      id: string;
    };
    t.equal(body.id, "o-1", "the original protobuf payload is the body");

    const metrics = await (await fetch(`${gw.adminUrl}/metrics`)).text();
    t.match(metrics, /turnout_dead_letters_total\{route="orders.get"\} 1/);

    const listed = await call(`${gw.adminUrl}/admin/dlq?route=orders.get`, { token: TOKEN });
    t.equal(listed.status, 200);
    t.match(listed.body, {
      deadLetters: [{ requestId: "req-o-1", errorCode: "TURNOUT_ERR_NO_RESPONDERS" }],
    });
    const unauth = await call(`${gw.adminUrl}/admin/dlq`, { token: null });
    t.equal(unauth.status, 401, "the admin endpoint needs the bearer token");
    const unknown = await call(`${gw.adminUrl}/admin/dlq?route=nope`, { token: TOKEN });
    t.equal(unknown.status, 404);
  },
);

t.test(
  "POST /admin/dlq/replay re-drives the letter once the worker is back, then deletes it",
  async (t) => {
    // Nothing to answer yet: the replay fails and the letter stays.
    const failed = await call(`${gw.adminUrl}/admin/dlq/replay`, {
      method: "POST",
      body: JSON.stringify({ route: "orders.get" }),
      token: TOKEN,
    });
    t.equal(failed.status, 200);
    t.match(failed.body, {
      outcomes: [{ requestId: "req-o-1", result: "failed", code: "TURNOUT_ERR_NO_RESPONDERS" }],
    });
    t.equal((await listDeadLetters(stack.nc)).length, 1, "a failed replay keeps the letter");

    const worker = startWorker();
    t.teardown(worker.stop);
    await stack.nc.flush();
    const replayed = await call(`${gw.adminUrl}/admin/dlq/replay`, {
      method: "POST",
      body: JSON.stringify({ since: new Date(Date.now() - 60_000).toISOString() }),
      token: TOKEN,
    });
    t.equal(replayed.status, 200);
    t.match(replayed.body, {
      outcomes: [{ requestId: "req-o-1", route: "orders.get", result: "ok", status: 200 }],
    });
    t.equal(worker.seen.length, 1, "the worker received the request");
    const msg = worker.seen[0]!;
    t.equal((getType.decode(msg.data) as protobuf.Message & { id: string }).id, "o-1");
    t.equal(msg.headers?.get("X-Request-Id"), "req-o-1");
    t.equal(msg.headers?.get("Turnout-Route"), "orders.get");
    t.equal(msg.headers?.get("x-tenant"), "acme");
    t.equal(msg.headers?.get("Turnout-Error-Code"), "", "failure headers are not re-sent");
    t.same(await listDeadLetters(stack.nc), [], "the replayed letter is deleted");

    const bad = await call(`${gw.adminUrl}/admin/dlq/replay`, {
      method: "POST",
      body: JSON.stringify({ since: "yesterday-ish" }),
      token: TOKEN,
    });
    t.equal(bad.status, 400);
  },
);

t.test("a request the worker answers is not a dead letter", async (t) => {
  const worker = startWorker();
  t.teardown(worker.stop);
  await stack.nc.flush();
  const before = deadLetterCount();
  const res = await failOne("o-2");
  t.equal(res.status, 200);
  await new Promise((r) => setTimeout(r, 200));
  t.equal(deadLetterCount(), before);
  t.same(await listDeadLetters(stack.nc), []);
});
