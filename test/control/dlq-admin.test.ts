/**
 * The admin API's dead-letter calls beyond list and replay: paging a replay
 * past letters that keep failing (`after`), deleting a letter, the filters it
 * refuses, and its answer when JetStream is missing.
 */
import { jetstreamManager } from "@nats-io/jetstream";
import { headers as natsHeaders } from "@nats-io/transport-node";
import type protobuf from "protobufjs";
import t from "tap";
import { DLQ_STREAM, listDeadLetters } from "../../src/backends/nats/dead-letters.js";
import { call, within } from "../helpers/cutover-fixture.js";
import { ordersGetRoute } from "../helpers/route-yaml.js";
import { startStack, writeRoutes } from "../helpers/stack.js";

const TOKEN = "dlq-admin-token";
const stack = await startStack(
  t,
  writeRoutes(ordersGetRoute({ cutover: "{ nats: 100, shadow: 0 }" })),
  { jetstream: true, adminToken: TOKEN },
);
const gw = stack.gateway;
await gw.deadLetters.ensureStream();
const jsm = await jetstreamManager(stack.nc);
const getType = stack.root.lookupType("orders.v1.GetOrderRequest");
const orderType = stack.root.lookupType("orders.v1.Order");

/** Each test starts from an empty stream; returns the new letters' sequences. */
async function letters(...ids: string[]): Promise<number[]> {
  await jsm.streams.purge(DLQ_STREAM);
  const before = gw.metrics.deadLetters.cell("orders.get").value;
  for (const id of ids) {
    const res = await fetch(`${gw.url}/v1/orders/${id}`, { headers: { "x-request-id": id } });
    await res.arrayBuffer();
  }
  const stored = () => gw.metrics.deadLetters.cell("orders.get").value === before + ids.length;
  if (!(await within(3000, stored))) throw new Error("letters not stored");
  return (await listDeadLetters(stack.nc)).map((letter) => letter.seq);
}

const admin = (path: string, method = "GET", body?: unknown) =>
  call(`${gw.adminUrl}${path}`, {
    method,
    token: TOKEN,
    body: body === undefined ? undefined : JSON.stringify(body),
  });

t.test(
  "a paged replay gets past letters that keep failing by the after it answers with more",
  async (t) => {
    const [bad1, bad2, good] = await letters("bad-1", "bad-2", "good-1");
    // A worker that refuses the bad ones for good (400) and answers the others.
    const sub = stack.nc.subscribe("svc.orders.get", {
      callback: (_err, msg) => {
        const { id } = getType.decode(msg.data) as protobuf.Message & { id: string };
        if (!id.startsWith("bad")) {
          msg.respond(orderType.encode(orderType.fromObject({ id })).finish());
          return;
        }
        const h = natsHeaders();
        h.set("Nats-Service-Error-Code", "400");
        h.set("Nats-Service-Error", "invalid order");
        msg.respond(new Uint8Array(), { headers: h });
      },
    });
    t.teardown(() => sub.unsubscribe());
    await stack.nc.flush();

    const first = await admin("/admin/dlq/replay", "POST", { limit: 2 });
    t.equal(first.status, 200);
    t.match(first.body, {
      outcomes: [
        { seq: bad1, result: "failed", code: "400" },
        { seq: bad2, result: "failed", code: "400" },
      ],
      more: true,
      after: bad2,
    });
    const next = await admin("/admin/dlq/replay", "POST", { limit: 2, after: first.body.after });
    t.equal(next.status, 200);
    t.match(next.body, { outcomes: [{ seq: good, result: "ok", status: 200 }], more: false });
    t.notOk("after" in next.body, "no after when nothing is left");
    t.same(
      (await listDeadLetters(stack.nc)).map((letter) => letter.seq),
      [bad1, bad2],
      "the failing letters are kept where they were",
    );

    const page = await admin("/admin/dlq?limit=1");
    t.match(page.body, { deadLetters: [{ seq: bad1 }], more: true, after: bad1 });
    const rest = await admin(`/admin/dlq?limit=1&after=${bad1}`);
    t.match(rest.body, { deadLetters: [{ seq: bad2 }], more: false });
    for (const bad of ["x", "-1", "1.5"]) {
      const refused = await admin(`/admin/dlq?after=${bad}`);
      t.equal(refused.status, 400, `after=${bad}`);
      t.match(refused.body, { code: "TURNOUT_ERR_BAD_PARAM", field: "after" });
    }
  },
);

t.test("DELETE /admin/dlq/:seq deletes one letter; one not there is a 404 problem", async (t) => {
  const [first, second] = await letters("del-1", "del-2");
  const unauthorized = await call(`${gw.adminUrl}/admin/dlq/${first}`, {
    method: "DELETE",
    token: null,
  });
  t.equal(unauthorized.status, 401, "it needs the bearer token like every /admin call");

  const deleted = await admin(`/admin/dlq/${first}`, "DELETE");
  t.equal(deleted.status, 200);
  t.same(deleted.body, { deleted: { seq: first, route: "orders.get", requestId: "del-1" } });
  t.same(
    (await listDeadLetters(stack.nc)).map((letter) => letter.seq),
    [second],
    "only that letter is gone",
  );

  const again = await admin(`/admin/dlq/${first}`, "DELETE");
  t.equal(again.status, 404);
  t.match(again.type, /^application\/problem\+json/);
  t.match(again.body, { code: "TURNOUT_ERR_NOT_FOUND", field: "seq" });
  const bad = await admin("/admin/dlq/abc", "DELETE");
  t.equal(bad.status, 400);
  t.match(bad.body, { code: "TURNOUT_ERR_BAD_PARAM", field: "seq" });
});

t.test(
  "a replay refuses any query parameter, naming it, and re-sends nothing: its filters go in the body",
  async (t) => {
    const [seq] = await letters("query-1");
    const seen: string[] = [];
    const sub = stack.nc.subscribe("svc.orders.get", {
      callback: (_err, msg) => {
        seen.push(msg.subject);
        msg.respond(orderType.encode(orderType.fromObject({ id: "x" })).finish());
      },
    });
    t.teardown(() => sub.unsubscribe());
    await stack.nc.flush();

    // As GET /admin/dlq takes it, and misspelt: either would have replayed every letter.
    for (const key of ["route", "rout"]) {
      const refused = await admin(`/admin/dlq/replay?${key}=orders.get`, "POST");
      t.equal(refused.status, 400, `?${key}= is refused`);
      t.match(refused.body, { code: "TURNOUT_ERR_BAD_PARAM", field: key, detail: /JSON body/ });
    }
    const withBody = await admin("/admin/dlq/replay?limit=1", "POST", { route: "orders.get" });
    t.equal(withBody.status, 400, "a query is refused even next to a body");
    await stack.nc.flush();
    t.same(seen, [], "nothing was re-sent");
    t.same(
      (await listDeadLetters(stack.nc)).map((letter) => letter.seq),
      [seq],
      "the letter is still there",
    );
  },
);

t.test("a since below 1 ms or beyond the dates a Date holds is a 400 naming since", async (t) => {
  for (const since of ["0.5ms", "1.5ms", "0.0001s", "99999999999h"]) {
    const listed = await admin(`/admin/dlq?since=${since}`);
    t.equal(listed.status, 400, `GET since=${since}`);
    t.match(listed.body, {
      code: "TURNOUT_ERR_BAD_PARAM",
      field: "since",
      detail: new RegExp(`^since .*got "${since}"$`),
    });
    const replayed = await admin("/admin/dlq/replay", "POST", { since });
    t.equal(replayed.status, 400, `POST since=${since}`);
    t.match(replayed.body, { code: "TURNOUT_ERR_BAD_PARAM", field: "since" });
  }
});

t.test(
  "without JetStream on the NATS server, list, replay and delete answer 503 not connected",
  async (t) => {
    const bare = await startStack(
      t,
      writeRoutes(ordersGetRoute({ cutover: "{ nats: 100, shadow: 0 }" })),
      { jetstream: false, adminToken: TOKEN },
    );
    const at = (path: string, method: string, body?: string) =>
      call(`${bare.gateway.adminUrl}${path}`, { method, token: TOKEN, body });
    const answers = {
      list: await at("/admin/dlq", "GET"),
      replay: await at("/admin/dlq/replay", "POST", "{}"),
      delete: await at("/admin/dlq/1", "DELETE"),
    };
    for (const [name, answer] of Object.entries(answers)) {
      t.equal(answer.status, 503, name);
      t.match(answer.type, /^application\/problem\+json/);
      t.match(
        answer.body,
        { code: "TURNOUT_ERR_NOT_CONNECTED", detail: /^dead letters unavailable: .*JetStream/ },
        name,
      );
    }
  },
);
