import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import type protobuf from "protobufjs";
import t, { type Test } from "tap";
import {
  DeadLetterStore,
  DLQ_RETRY_AFTER_MS,
  DLQ_STREAM,
  DLQ_WARN_EVERY_MS,
  deleteDeadLetter,
  listDeadLetters,
  parseSince,
  replayDeadLetters,
} from "../../../src/backends/nats/dead-letters.js";
import { NatsLink } from "../../../src/backends/nats/link.js";
import { startNatsServer } from "../../../src/devtools/nats-server.js";
import { TurnoutError } from "../../../src/errors.js";
import { GatewayMetrics } from "../../../src/observability/metrics.js";
import { call, within } from "../../helpers/cutover-fixture.js";
import { ordersGetRoute } from "../../helpers/route-yaml.js";
import { startPaidOrdersWorker } from "../../helpers/routes-and-workers.js";
import { startStack, writeRoutes } from "../../helpers/stack.js";

const TOKEN = "dlq-test-token";
const routesFile = writeRoutes(
  ordersGetRoute({ headers: "[x-tenant]", cutover: "{ nats: 100, shadow: 0 }" }),
);
const stack = await startStack(t, routesFile, { jetstream: true, adminToken: TOKEN });
const gw = stack.gateway;
const getType = stack.root.lookupType("orders.v1.GetOrderRequest");

function deadLetterCount(): number {
  return gw.metrics.deadLetters.cell("orders.get").value;
}

/** A worker for svc.orders.get that keeps what it received. */
const startWorker = () => startPaidOrdersWorker(stack.nc, stack.root);

async function failOne(id: string): Promise<Response> {
  return fetch(`${gw.url}/v1/orders/${id}`, {
    headers: { "x-tenant": "acme", "x-request-id": `req-${id}` },
  });
}

t.test(
  "the dead-letter counters are exported at 0 from the start, so the first letters are an increase",
  async (t) => {
    const text = await gw.metrics.registry.metrics();
    t.match(text, /^turnout_dead_letters_total\{route="orders.get"\} 0$/m);
    for (const reason of ["overloaded", "unavailable", "failed"]) {
      t.match(
        text,
        new RegExp(
          `^turnout_dead_letters_lost_total\\{route="orders.get",reason="${reason}"\\} 0$`,
          "m",
        ),
        reason,
      );
    }
  },
);

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
    // A worker that never answers: the replay times out, and says so.
    const silent = stack.nc.subscribe("svc.orders.get", { callback: () => {} });
    await stack.nc.flush();
    const timedOut = await call(`${gw.adminUrl}/admin/dlq/replay`, {
      method: "POST",
      body: JSON.stringify({ route: "orders.get" }),
      token: TOKEN,
    });
    silent.unsubscribe();
    t.match(timedOut.body, {
      outcomes: [{ requestId: "req-o-1", result: "failed", code: "TURNOUT_ERR_TIMEOUT" }],
    });
    const misspelt = await call(`${gw.adminUrl}/admin/dlq/replay`, {
      method: "POST",
      body: JSON.stringify({ rout: "orders.get" }),
      token: TOKEN,
    });
    t.equal(misspelt.status, 400, "a misspelt filter is refused, not read as no filter");
    t.match(misspelt.body, { code: "TURNOUT_ERR_BAD_PARAM", field: "rout" });
    const misspeltQuery = await call(`${gw.adminUrl}/admin/dlq?rout=orders.get`, { token: TOKEN });
    t.equal(misspeltQuery.status, 400);
    for (const notAnObject of ['["orders.get"]', '"orders.get"', "null"]) {
      const refused = await call(`${gw.adminUrl}/admin/dlq/replay`, {
        method: "POST",
        body: notAnObject,
        token: TOKEN,
      });
      t.equal(refused.status, 400, `a ${notAnObject} body is refused, not read as "replay all"`);
      t.match(refused.body, { code: "TURNOUT_ERR_BAD_JSON", field: "body" });
    }

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

t.test(
  "GET /admin/dlq pages: limit letters (default 100), oldest first, and whether more are left",
  async (t) => {
    const since = new Date().toISOString();
    for (const id of ["o-p1", "o-p2", "o-p3"]) await (await failOne(id)).arrayBuffer();
    t.ok(
      await within(
        3000,
        async () => (await listDeadLetters(stack.nc, { since: new Date(since) })).length === 3,
      ),
    );
    const page = (query: string) =>
      call(`${gw.adminUrl}/admin/dlq?since=${since}${query}`, { token: TOKEN });
    const first = await page("&limit=2");
    t.equal(first.status, 200);
    t.same(
      (first.body.deadLetters as Array<{ requestId: string }>).map((l) => l.requestId),
      ["req-o-p1", "req-o-p2"],
    );
    t.equal(first.body.more, true);
    const all = await page("");
    t.equal((all.body.deadLetters as unknown[]).length, 3);
    t.equal(all.body.more, false);
    for (const bad of ["0", "1001", "2.5", "x"]) {
      const refused = await page(`&limit=${bad}`);
      t.equal(refused.status, 400, `limit=${bad}`);
      t.equal(refused.body.field, "limit");
    }
    const replayed = await call(`${gw.adminUrl}/admin/dlq/replay`, {
      method: "POST",
      body: JSON.stringify({ since, limit: 1 }),
      token: TOKEN,
    });
    t.equal(
      (replayed.body.outcomes as unknown[]).length,
      1,
      "a replay takes at most limit letters",
    );
    // The next tests start from an empty stream.
    await (await jetstreamManager(stack.nc)).streams.purge(DLQ_STREAM);
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

/** A store of its own on `nc`, with its warnings and counters at hand. */
function storeOn(nc: NatsConnection, options: { maxInFlight?: number; now?: () => number } = {}) {
  const metrics = new GatewayMetrics();
  const warnings: string[] = [];
  const link = new NatsLink();
  link.attach(nc);
  const store = new DeadLetterStore({
    link,
    routes: stack.config.routes,
    root: stack.root,
    metrics,
    log: { warn: (message) => warnings.push(message) },
    ...options,
  });
  const lost = (reason: string) => metrics.deadLettersLost.cell("orders.get", reason).value;
  const stored = () => metrics.deadLetters.cell("orders.get").value;
  const reconnecting = () => {
    try {
      link.jetstream();
      return false;
    } catch {
      return true;
    }
  };
  return { store, warnings, lost, stored, reconnecting };
}

const ordersRoute = stack.config.routes.find((r) => r.name === "orders.get")!;
const failedInput = (i: number) => ({
  requestId: `storm-${i}`,
  params: { id: `o-${i}` },
  query: {},
  body: undefined,
  headers: {},
});
const noResponders = new TurnoutError("TURNOUT_ERR_NO_RESPONDERS", "no worker listens");

/** Counts JetStream API requests on `url`'s server, seen by a subscriber of its own. */
async function jetStreamApiCalls(t: Test, url: string): Promise<() => Promise<number>> {
  const spy = await connect({ servers: url });
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

t.test(
  "a storm of failures on a server without JetStream asks JetStream once, warns once and counts every lost letter",
  async (t) => {
    const plain = await startNatsServer();
    t.teardown(() => plain.stop());
    const nc = await connect({ servers: plain.url });
    t.teardown(() => nc.close());
    const calls = await jetStreamApiCalls(t, plain.url);
    let clock = 0;
    const { store, warnings, lost, stored } = storeOn(nc, { now: () => clock });

    for (let i = 0; i < 200; i++) store.record(ordersRoute, failedInput(i), noResponders);
    // A server without JetStream does not answer its API: the lookup fails on its timeout (5 s).
    t.ok(await within(8000, () => lost("unavailable") === 200), "all 200 counted as lost");
    t.equal(stored(), 0);
    t.equal(await calls(), 1, "one stream lookup for the whole storm, not one per letter");
    t.equal(warnings.length, 1, "one warning, not 200");
    t.match(warnings[0], /dead letter of orders\.get request storm-0 not stored \(unavailable\)/);

    clock += 1000;
    store.record(ordersRoute, failedInput(200), noResponders);
    t.equal(lost("unavailable"), 201, "within the retry wait the letter is lost at once");
    t.equal(await calls(), 1, "without asking the server again");

    clock += DLQ_RETRY_AFTER_MS;
    store.record(ordersRoute, failedInput(201), noResponders);
    t.ok(await within(8000, () => lost("unavailable") === 202));
    t.equal(await calls(), 2, "after the retry wait the stream is looked up again");

    // 10 s after the first warning, still within the wait that began with the second lookup.
    clock = DLQ_WARN_EVERY_MS;
    t.ok(clock < 1000 + 2 * DLQ_RETRY_AFTER_MS);
    store.record(ordersRoute, failedInput(202), noResponders);
    t.equal(lost("unavailable"), 203, "lost at once: the wait began again with the failed lookup");
    t.equal(warnings.length, 2, "the next warning comes once the interval has passed");
    t.match(warnings[1], /and 201 more lost since the last warning/);
  },
);

t.test(
  "letters beyond the in-flight cap are lost as overloaded; those within it are stored",
  async (t) => {
    const { store, lost, stored } = storeOn(stack.nc, { maxInFlight: 4 });
    await store.ensureStream();
    const before = (await listDeadLetters(stack.nc, { route: "orders.get" })).length;
    // All recorded in one turn: none has its ack yet when the fifth arrives.
    for (let i = 0; i < 20; i++) store.record(ordersRoute, failedInput(300 + i), noResponders);
    t.equal(lost("overloaded"), 16);
    t.ok(await within(3000, () => stored() === 4), "the 4 within the cap are stored");
    const letters = await listDeadLetters(stack.nc, { route: "orders.get" });
    t.same(
      letters.slice(before).map((l) => l.requestId),
      ["storm-300", "storm-301", "storm-302", "storm-303"],
    );

    store.record(ordersRoute, failedInput(320), noResponders);
    t.ok(await within(3000, () => stored() === 5), "once acked, the slots are free again");
    t.equal(lost("overloaded"), 16);
  },
);

t.test(
  "a stream deleted while the gateway runs is created again for the next letter",
  async (t) => {
    const server = await startNatsServer({ jetstream: true });
    t.teardown(() => server.stop());
    const nc = await connect({ servers: server.url });
    t.teardown(() => nc.close());
    const { store, lost, stored } = storeOn(nc);
    store.record(ordersRoute, failedInput(400), noResponders);
    t.ok(await within(3000, () => stored() === 1), "the first letter creates the stream");
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete(DLQ_STREAM); // an operator clearing it by hand
    store.record(ordersRoute, failedInput(401), noResponders);
    t.ok(await within(3000, () => stored() === 2), "the next letter is stored");
    t.equal(lost("failed") + lost("unavailable"), 0, "none lost");
    t.same(
      (await listDeadLetters(nc)).map((letter) => letter.requestId),
      ["storm-401"],
      "in a new stream",
    );
  },
);

t.test(
  "a letter while NATS reconnects is lost at once as unavailable, not after its ack timeout; stored once NATS is back",
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), "turnout-dlq-"));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    let server = await startNatsServer({ jetstream: true, storeDir: dir });
    t.teardown(() => server.stop());
    const port = Number(new URL(server.url).port);
    const nc = await connect({
      servers: server.url,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 100,
    });
    t.teardown(() => nc.close());
    const { store, lost, stored, reconnecting } = storeOn(nc);
    await store.ensureStream();

    await server.stop();
    t.ok(await within(5000, reconnecting), "the link saw the disconnect");
    store.record(ordersRoute, failedInput(500), noResponders);
    // A publish would have waited 5 s for its ack (the JetStream timeout), then counted "failed".
    t.ok(await within(4000, () => lost("unavailable") === 1), "counted unavailable, at once");
    t.equal(lost("failed"), 0);

    server = await startNatsServer({ jetstream: true, storeDir: dir, port });
    t.ok(await within(5000, () => !reconnecting()), "and the reconnect");
    store.record(ordersRoute, failedInput(501), noResponders);
    t.ok(await within(5000, () => stored() === 1), "the next letter is stored");
  },
);

t.test(
  "since takes an RFC 3339 time, a UTC date or a duration back from now, nothing looser",
  async (t) => {
    const now = Date.parse("2026-03-10T12:00:00Z");
    t.equal(
      parseSince("2026-03-01T08:30:00.250+01:00", now).toISOString(),
      "2026-03-01T07:30:00.250Z",
    );
    t.equal(parseSince("2026-03-01", now).toISOString(), "2026-03-01T00:00:00.000Z");
    t.equal(parseSince("2h", now).toISOString(), "2026-03-10T10:00:00.000Z");
    t.equal(parseSince(" 30m ", now).toISOString(), "2026-03-10T11:30:00.000Z");
    for (const loose of [
      "1",
      "2026",
      "March 1, 2026",
      "2026-02-30",
      "2026-03-01T08:30",
      "2h ago",
      "",
      // Below 1 ms: parseDuration's plain Error was a 500.
      "0.5ms",
      "0.0001s",
      // Beyond ±8.64e15 ms: an Invalid Date that matched nothing.
      "99999999999h",
    ]) {
      t.throws(
        () => parseSince(loose, now),
        { code: "TURNOUT_ERR_BAD_PARAM", field: "since" },
        loose,
      );
    }
  },
);

t.test("a list, replay or delete over a closed connection is a 503 not connected", async (t) => {
  const nc = await connect({ servers: stack.server.url });
  await nc.close();
  const calls: Record<string, Promise<unknown>> = {
    list: listDeadLetters(nc),
    replay: replayDeadLetters(nc),
    delete: deleteDeadLetter(nc, 1),
  };
  for (const [name, pending] of Object.entries(calls)) {
    await t.rejects(
      pending,
      { code: "TURNOUT_ERR_NOT_CONNECTED", message: /^dead letters unavailable: .*closed/ },
      name,
    );
  }
});
