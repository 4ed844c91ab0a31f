import { jetstreamManager } from "@nats-io/jetstream";
import type { Msg } from "@nats-io/transport-node";
import t from "tap";
import { TurnoutError } from "../../src/errors.js";
import { GatewayMetrics } from "../../src/observability/metrics.js";
import { compilePublishPipeline } from "../../src/server/publish-pipeline.js";
import { usersCreateRoute } from "../helpers/route-yaml.js";
import { startStack, writeRoutes } from "../helpers/stack.js";

const ROUTES =
  usersCreateRoute({
    subject: "events.users.{region}.created",
    mode: "publish",
    headers: "[x-user-id]",
  }) +
  `  - name: audit.write
    method: POST
    path: /v1/audit/:region
    subject: audit.{region}.write
    request: users.v1.CreateUserRequest
    response: users.v1.User
    body: user
    mode: publish
  - name: users.import
    method: POST
    path: /v1/imports/:region/users
    subject: events.users.{region}.imported
    request: users.v1.CreateUserRequest
    response: users.v1.User
    body: user
    mode: publish
  - name: bulk.write
    method: POST
    path: /v1/bulk/:region
    subject: bulk.{region}.write
    request: users.v1.CreateUserRequest
    response: users.v1.User
    body: user
    mode: publish
    bodyLimit: 4MiB
    breaker: { errorPercent: 50, volume: 5, resetAfter: 10s }
  - name: acks.write
    method: POST
    path: /v1/acks/:region
    subject: acks.{region}.write
    request: users.v1.CreateUserRequest
    response: users.v1.User
    body: user
    mode: publish
    timeout: 300ms
    retry: { attempts: 1, backoff: 10ms }
`;

const stack = await startStack(t, writeRoutes(ROUTES), { jetstream: true });
const jsm = await jetstreamManager(stack.nc);
await jsm.streams.add({ name: "USER_EVENTS", subjects: ["events.users.>"] });
await jsm.streams.add({ name: "BULK", subjects: ["bulk.>"] });

const url = (path: string) => `${stack.gateway.url}${path}`;
const requestType = stack.root.lookupType("users.v1.CreateUserRequest");

function post(path: string, body: unknown, headers: Record<string, string> = {}) {
  return fetch(url(path), {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

async function problemOf(res: Response): Promise<Record<string, unknown>> {
  const type = res.headers.get("content-type") ?? "";
  if (!type.startsWith("application/problem+json")) throw new Error(`not problem+json: ${type}`);
  return (await res.json()) as Record<string, unknown>;
}

t.test("a publish route answers 202 with the stream's ack; the message is stored", async (t) => {
  const res = await post(
    "/v1/regions/eu-west/users",
    { id: "u-9", display_name: "Grace", tier: "TIER_PRO" },
    { "x-request-id": "req-pub-1", "x-user-id": "u-9" },
  );
  t.equal(res.status, 202);
  t.match(res.headers.get("content-type"), /^application\/json/);
  const ack = (await res.json()) as { stream: string; seq: number; duplicate: boolean };
  t.same(Object.keys(ack), ["stream", "seq", "duplicate"]);
  t.equal(ack.stream, "USER_EVENTS");
  t.type(ack.seq, "number");
  t.equal(ack.duplicate, false);

  const stored = await jsm.streams.getMessage("USER_EVENTS", { seq: ack.seq });
  t.ok(stored, "the message is in the stream at the acked sequence");
  t.equal(stored!.subject, "events.users.eu-west.created", "subject template filled");
  const decoded = requestType.toObject(requestType.decode(stored!.data), {
    enums: String,
  });
  t.same(decoded, {
    region: "eu-west",
    user: { id: "u-9", display_name: "Grace", tier: "TIER_PRO" },
  });
  t.equal(stored!.header.get("Turnout-Route"), "users.create");
  t.equal(stored!.header.get("X-Request-Id"), "req-pub-1");
  t.equal(stored!.header.get("x-user-id"), "u-9", "allowed headers travel with the message");
  t.equal(stored!.header.get("Nats-Msg-Id"), "", "no Idempotency-Key, no Nats-Msg-Id");
});

t.test("the same Idempotency-Key twice stores one message", async (t) => {
  const before = (await jsm.streams.info("USER_EVENTS")).state.messages;
  const send = () =>
    post("/v1/regions/eu/users", { id: "u-10" }, { "idempotency-key": "create-u-10-once" });
  const first = await send();
  t.equal(first.status, 202);
  const a = (await first.json()) as { stream: string; seq: number; duplicate: boolean };
  t.equal(a.duplicate, false);
  const second = await send();
  t.equal(second.status, 202);
  const b = (await second.json()) as { stream: string; seq: number; duplicate: boolean };
  t.same(b, { stream: "USER_EVENTS", seq: a.seq, duplicate: true }, "same seq, marked duplicate");
  const after = (await jsm.streams.info("USER_EVENTS")).state.messages;
  t.equal(after - before, 1, "stored once");
  const stored = await jsm.streams.getMessage("USER_EVENTS", { seq: a.seq });
  t.equal(
    stored!.header.get("Nats-Msg-Id"),
    "users.create:create-u-10-once",
    "scoped to the route",
  );

  const other = await post(
    "/v1/regions/eu/users",
    { id: "u-10" },
    { "idempotency-key": "create-u-10-again" },
  );
  const c = (await other.json()) as { seq: number; duplicate: boolean };
  t.equal(c.duplicate, false, "another key is another message");
  t.ok(c.seq > a.seq);
});

t.test(
  "an Idempotency-Key reused for another body or path is a 422 naming the header, and nothing more is stored",
  async (t) => {
    const key = { "idempotency-key": "create-u-30" };
    const first = await post("/v1/regions/eu/users", { id: "u-30" }, key);
    t.equal(first.status, 202);
    const before = (await jsm.streams.info("USER_EVENTS")).state.messages;
    const retried = await post("/v1/regions/eu/users", { id: "u-30" }, key);
    t.match(await retried.json(), { duplicate: true }, "the same request again is a duplicate");
    for (const [path, body] of [
      ["/v1/regions/eu/users", { id: "u-31" }],
      ["/v1/regions/us/users", { id: "u-30" }],
    ] as const) {
      const reused = await post(path, body, key);
      t.equal(reused.status, 422, `${path} ${JSON.stringify(body)}`);
      t.match(reused.headers.get("content-type"), /^application\/problem\+json/);
      t.match(await reused.json(), {
        code: "TURNOUT_ERR_IDEMPOTENCY_KEY_REUSED",
        field: "idempotency-key",
        detail: /"create-u-30" was already used for a different request/,
      });
    }
    t.equal((await jsm.streams.info("USER_EVENTS")).state.messages, before, "nothing stored");
  },
);

t.test("the same Idempotency-Key on two routes into one stream stores both messages", async (t) => {
  const key = { "idempotency-key": "client-counter-1" };
  const created = await post("/v1/regions/eu/users", { id: "u-20" }, key);
  t.equal(created.status, 202);
  const a = (await created.json()) as { stream: string; seq: number; duplicate: boolean };
  const imported = await post("/v1/imports/eu/users", { id: "u-21" }, key);
  t.equal(imported.status, 202);
  const b = (await imported.json()) as { stream: string; seq: number; duplicate: boolean };
  t.equal(b.stream, "USER_EVENTS", "both routes publish into one stream");
  t.equal(b.duplicate, false, "the other route's message is not taken for a duplicate");
  t.not(b.seq, a.seq);
  const stored = await jsm.streams.getMessage("USER_EVENTS", { seq: b.seq });
  t.equal(stored!.subject, "events.users.eu.imported", "the second route's message is stored");
  t.equal(stored!.header.get("Nats-Msg-Id"), "users.import:client-counter-1");
  const again = await post("/v1/imports/eu/users", { id: "u-21" }, key);
  t.same(await again.json(), { ...b, duplicate: true }, "within one route the key still dedupes");
});

/** A header value as Node hands it over: one char per byte the client sent. */
const asSent = (text: string) => Buffer.from(text, "utf8").toString("latin1");

t.test(
  "non-ASCII header values and Idempotency-Keys are stored as the bytes the client sent",
  async (t) => {
    const res = await post(
      "/v1/regions/eu/users",
      { id: "u-30" },
      { "x-user-id": asSent("café voilà"), "idempotency-key": asSent("clé-à") },
    );
    t.equal(res.status, 202);
    const { seq } = (await res.json()) as { seq: number };
    const stored = await jsm.streams.getMessage("USER_EVENTS", { seq });
    // Decoded as UTF-8 on the way out, so a double encoding would read "cafÃ©".
    t.equal(stored!.header.get("x-user-id"), "café voilà", "UTF-8 bytes kept, trailing 0xA0 too");
    t.equal(stored!.header.get("Nats-Msg-Id"), "users.create:clé-à");
  },
);

t.test(
  "a body over the NATS server's max_payload is a 413 that does not open the breaker",
  async (t) => {
    // 1.5 MB: under the route's bodyLimit (4MiB), over nats-server's 1 MB max_payload.
    const huge = { id: "x".repeat(1_500_000) };
    for (let i = 0; i < 8; i++) {
      const res = await post("/v1/bulk/eu", huge);
      t.equal(res.status, 413, `oversize publish ${i + 1}`);
      const problem = await problemOf(res);
      t.match(problem, { code: "TURNOUT_ERR_BODY_TOO_LARGE", route: "bulk.write" });
      t.match(String(problem.detail), /max_payload/);
    }
    const small = await post("/v1/bulk/eu", { id: "small" });
    t.equal(small.status, 202, "the breaker (volume 5, 50%) stayed closed");
    t.match(await small.json(), { stream: "BULK", duplicate: false });
  },
);

t.test("a subject no stream stores is a 503 problem naming the subject", async (t) => {
  const res = await post("/v1/audit/eu", { id: "u-1" });
  t.equal(res.status, 503);
  const problem = await problemOf(res);
  t.match(problem, { code: "TURNOUT_ERR_NO_STREAM", status: 503, route: "audit.write" });
  t.match(String(problem.detail), /audit\.eu\.write/);
});

t.test("a bad body is still a 400 problem naming the field, and nothing is stored", async (t) => {
  const before = (await jsm.streams.info("USER_EVENTS")).state.messages;
  const res = await post("/v1/regions/eu/users", { id: "u-1", tier: "TIER_NOPE" });
  t.equal(res.status, 400);
  const problem = await problemOf(res);
  t.match(problem, { code: "TURNOUT_ERR_BAD_FIELD", field: "$.tier", route: "users.create" });
  const unknown = await post("/v1/regions/eu/users", '{"nope":1}');
  t.equal(unknown.status, 400);
  t.match(await problemOf(unknown), { field: "$.nope" });
  t.equal((await jsm.streams.info("USER_EVENTS")).state.messages, before);
});

t.test("a publish refused while NATS reconnects is retried per the route's policy", async (t) => {
  const route = stack.config.routes.find((r) => r.name === "users.create")!;
  const link = stack.gateway.nats;
  let refusals = 1;
  // The real link, but the first attempt finds it reconnecting, as link.jetstream() says then.
  const reconnecting = {
    request: link.request.bind(link),
    jetstream: () => {
      if (refusals-- > 0) throw new TurnoutError("TURNOUT_ERR_NOT_CONNECTED", "reconnecting");
      return link.jetstream();
    },
  };
  const metrics = new GatewayMetrics();
  const retried = { ...route, retry: { ...route.retry, attempts: 2, backoffMs: 10 } };
  const call = compilePublishPipeline(retried, stack.root, reconnecting, metrics.route(route.name));
  const answer = await call({
    requestId: "req-reconnect",
    params: { region: "eu" },
    query: {},
    body: JSON.stringify({ id: "u-12" }),
    headers: {},
  })();
  t.equal(answer.status, 202, "the second attempt is published");
  t.match(JSON.parse(answer.body), { stream: "USER_EVENTS", duplicate: false });
  t.match(
    await metrics.registry.metrics(),
    /turnout_retries_total\{route="users.create",backend="nats"\} 1/,
  );
});

/**
 * Stands in for a stream on `acks.>` whose first ack gets lost: it stays silent
 * to the first publish (the gateway times out) and acks every later one as
 * JetStream would, so a retry is seen, with its Nats-Msg-Id, and answered.
 */
function ackLosingStream(options: { storedFirst?: boolean } = {}) {
  const seen: Msg[] = [];
  const sub = stack.nc.subscribe("acks.>", {
    callback: (_err, msg) => {
      seen.push(msg);
      if (seen.length === 1) return;
      // A stream that stored the first publish acks the keyed retry as its duplicate.
      const ack = options.storedFirst
        ? { stream: "ACKS", seq: 1, duplicate: true }
        : { stream: "ACKS", seq: seen.length };
      msg.respond(JSON.stringify(ack));
    },
  });
  return { seen, stop: () => sub.unsubscribe() };
}

t.test("a publish whose ack timed out is retried when it has an Idempotency-Key", async (t) => {
  const stream = ackLosingStream();
  t.teardown(stream.stop);
  await stack.nc.flush();
  const res = await post("/v1/acks/eu", { id: "u-1" }, { "idempotency-key": "order-77" });
  t.equal(res.status, 202, "the retry's ack answers the client");
  t.same(await res.json(), { stream: "ACKS", seq: 2, duplicate: false });
  t.equal(stream.seen.length, 2, "published twice");
  t.same(
    stream.seen.map((msg) => msg.headers?.get("Nats-Msg-Id")),
    ["acks.write:order-77", "acks.write:order-77"],
    "both times with the key, so a real stream keeps one",
  );
});

t.test(
  "a retry acked as the duplicate of the gateway's own timed-out attempt answers duplicate: false",
  async (t) => {
    const stream = ackLosingStream({ storedFirst: true });
    t.teardown(stream.stop);
    await stack.nc.flush();
    const res = await post("/v1/acks/eu", { id: "u-3" }, { "idempotency-key": "order-78" });
    t.equal(res.status, 202);
    t.same(
      await res.json(),
      { stream: "ACKS", seq: 1, duplicate: false },
      "the client's one request was stored once: not a duplicate of anything it sent",
    );
    t.equal(stream.seen.length, 2);
  },
);

t.test("without an Idempotency-Key a timed-out publish is not retried: 504", async (t) => {
  const stream = ackLosingStream();
  t.teardown(stream.stop);
  await stack.nc.flush();
  const res = await post("/v1/acks/eu", { id: "u-2" });
  t.equal(res.status, 504);
  t.equal((await problemOf(res)).code, "TURNOUT_ERR_TIMEOUT");
  t.equal(stream.seen.length, 1, "published once: the stream may have stored it");
});

// Last: it stops the nats-server.
t.test("NATS not connected is a 503 NOT_CONNECTED", async (t) => {
  await stack.server.stop();
  // nats.js notices the dropped socket asynchronously.
  let res: Response | undefined;
  for (let i = 0; i < 50; i++) {
    res = await post("/v1/regions/eu/users", { id: "u-11" });
    if (res.status === 503) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  t.equal(res?.status, 503);
  t.match(await problemOf(res!), { code: "TURNOUT_ERR_NOT_CONNECTED" });
});
