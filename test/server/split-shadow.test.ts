import type { ServerResponse } from "node:http";
import type protobuf from "protobufjs";
import t from "tap";
import { startWorker } from "../../src/worker/index.js";
import { type SeenByLegacy, sendJson, startLegacyServer } from "../helpers/legacy-server.js";
import { ordersGetRoute, usersCreateRoute, usersGetRoute } from "../helpers/route-yaml.js";
import { startStack, writeRoutes } from "../helpers/stack.js";

const TOKEN = "s3cret-admin-token";

/** The user both sides serve, printed the way the route prints it. */
function user(id: string, region: string) {
  return { id, region, display_name: "Ada", email: "ada@example.com" };
}

/** Legacy's answer: the same, except for one user whose email differs in case. */
function legacyUser(id: string, region: string) {
  return id === "u-diff" ? { ...user(id, region), email: "ADA@example.com" } : user(id, region);
}

function legacyUsers(request: SeenByLegacy, res: ServerResponse): void {
  const [path, query = ""] = request.url.split("?");
  const get = /^\/v1\/regions\/([^/]+)\/users\/([^/]+)$/.exec(path ?? "");
  if (request.method === "GET" && get) {
    const [, region = "", id = ""] = get;
    // "hang" never answers: a hanging shadow side.
    if (id !== "hang") sendJson(res, 200, legacyUser(id, region), { "x-legacy": "1" });
    return;
  }
  if (request.method === "POST" && /^\/v1\/regions\/[^/]+\/users$/.test(path ?? "")) {
    const body = JSON.parse(request.body || "{}") as { id?: string };
    sendJson(
      res,
      201,
      { created: body.id, query },
      {
        location: `/v1/regions/eu/users/${body.id}`,
        "x-custom": "kept",
        "set-cookie": "a=1",
      },
    );
    return;
  }
  if (path?.startsWith("/v1/slow")) {
    sendJson(res, request.method === "POST" ? 201 : 200, { from: "legacy" });
    return;
  }
  if (request.method === "GET" && path?.startsWith("/v1/orders/")) {
    sendJson(res, 200, { id: path.slice("/v1/orders/".length) });
    return;
  }
  sendJson(res, 404, { error: "not_found" });
}

const legacy = await startLegacyServer(legacyUsers);
t.teardown(() => legacy.close());

const ROUTES =
  usersGetRoute({
    legacy: "users",
    timeout: "2s",
    cutover: '{ nats: 30, shadow: 0, sticky: "header:x-user-id" }',
  }) +
  usersCreateRoute({ legacy: "users", cutover: "{ nats: 0, shadow: 0 }" }) +
  ordersGetRoute({
    subject: "svc.orders.nobody",
    legacy: "users",
    cutover: "{ nats: 100, shadow: 0 }",
  }) +
  `  - name: slow.get
    method: GET
    path: /v1/slow/:id
    subject: svc.slow.get
    request: orders.v1.GetOrderRequest
    response: orders.v1.Order
    legacy: users
    timeout: 200ms
    cutover: { nats: 100, shadow: 0 }
  - name: slow.create
    method: POST
    path: /v1/slow
    subject: svc.slow.create
    request: orders.v1.CreateOrderRequest
    response: orders.v1.Order
    body: order
    legacy: users
    timeout: 200ms
    cutover: { nats: 100, shadow: 0 }
  - name: dead.get
    method: GET
    path: /v1/dead/:id
    subject: svc.dead.get
    request: orders.v1.GetOrderRequest
    response: orders.v1.Order
    legacy: http://127.0.0.1:1
    cutover: { nats: 0, shadow: 0 }
`;
const stack = await startStack(
  t,
  writeRoutes(ROUTES, `legacy:\n  users: ${legacy.url}\ndefaults:\n  json: { names: proto }\n`),
  { adminToken: TOKEN },
);
const natsSeen: Array<{ requestId: string; shadow: boolean }> = [];
const userType = stack.root.lookupType("users.v1.User");
const workers = [
  startWorker({
    nc: stack.nc,
    root: stack.root,
    subject: "svc.users.*.get",
    requestType: "users.v1.GetUserRequest",
    responseType: "users.v1.User",
    handle(req: protobuf.Message & { id: string; region: string }, ctx) {
      natsSeen.push({
        requestId: ctx.requestId ?? "",
        shadow: ctx.headers?.get("Turnout-Shadow") === "1",
      });
      return userType.fromObject(user(req.id, req.region));
    },
  }),
  startWorker({
    nc: stack.nc,
    root: stack.root,
    subject: "svc.users.*.create",
    requestType: "users.v1.CreateUserRequest",
    responseType: "users.v1.User",
    handle(_req, ctx) {
      natsSeen.push({ requestId: ctx.requestId ?? "", shadow: false });
      return {};
    },
  }),
];
// Takes svc.slow.* requests and never answers them: the gateway times out.
stack.nc.subscribe("svc.slow.*", { callback: () => {} });
await stack.nc.flush();
t.teardown(async () => {
  for (const worker of workers) await worker.stop();
});

const url = (path: string) => `${stack.gateway.url}${path}`;
const admin = (path: string, token = TOKEN) =>
  fetch(`${stack.gateway.adminUrl}${path}`, { headers: { authorization: `Bearer ${token}` } });

/** Sends one request per key (20 at a time) and says which side served each. */
async function sidesOf(keys: string[]): Promise<Map<string, "nats" | "legacy">> {
  const sides = new Map<string, "nats" | "legacy">();
  for (let i = 0; i < keys.length; i += 20) {
    await Promise.all(
      keys.slice(i, i + 20).map(async (key) => {
        const res = await fetch(url(`/v1/regions/eu/users/${key}`), {
          headers: { "x-user-id": key, "x-request-id": `${key}-${Math.random()}` },
        });
        t.equal(res.status, 200);
        sides.set(key, res.headers.get("x-legacy") === "1" ? "legacy" : "nats");
        await res.arrayBuffer();
      }),
    );
  }
  return sides;
}

const natsShare = (sides: Map<string, string>) =>
  (100 * [...sides.values()].filter((side) => side === "nats").length) / sides.size;

t.test(
  "the split follows the percentage, sticks per key and only moves keys towards NATS",
  async (t) => {
    const keys = Array.from({ length: 2000 }, (_, i) => `user-${i}`);
    const at30 = await sidesOf(keys);
    t.ok(
      Math.abs(natsShare(at30) - 30) <= 3,
      `NATS share at 30% is ${natsShare(at30).toFixed(1)}%`,
    );

    const again = await sidesOf(keys.slice(0, 300));
    const flipped = [...again].filter(([key, side]) => at30.get(key) !== side);
    t.same(flipped, [], "no key changes side between repeated requests");

    stack.gateway.cutover.set("users.get", { nats: 60, shadow: 0 });
    const at60 = await sidesOf(keys);
    t.ok(
      Math.abs(natsShare(at60) - 60) <= 3,
      `NATS share at 60% is ${natsShare(at60).toFixed(1)}%`,
    );
    const movedBack = keys.filter((key) => at30.get(key) === "nats" && at60.get(key) !== "nats");
    t.same(movedBack, [], "every key on NATS at 30% is still on NATS at 60%");
    stack.gateway.cutover.set("users.get", { nats: 30, shadow: 0 });
  },
);

t.test("both sides answer the same request with the same JSON", async (t) => {
  const ask = async (backend: string) => {
    const res = await fetch(url("/v1/regions/eu/users/u-1"), {
      headers: { "turnout-backend": backend, "turnout-token": TOKEN },
    });
    t.equal(res.status, 200);
    return { legacy: res.headers.get("x-legacy") === "1", body: await res.text() };
  };
  const fromNats = await ask("nats");
  const fromLegacy = await ask("legacy");
  t.notOk(fromNats.legacy, "forced to NATS");
  t.ok(fromLegacy.legacy, "forced to legacy");
  t.equal(fromNats.body, fromLegacy.body);
});

t.test(
  "the forced-backend header is ignored without the admin token and never forwarded",
  async (t) => {
    const before = legacy.seen.length;
    for (const token of [undefined, "wrong-token"]) {
      const headers: Record<string, string> = { "turnout-backend": "legacy" };
      if (token !== undefined) headers["turnout-token"] = token;
      const res = await fetch(url("/v1/orders/o-1"), { headers });
      t.equal(res.status, 200);
    }
    const forced = await fetch(url("/v1/orders/o-2"), {
      headers: { "turnout-backend": "legacy", "turnout-token": TOKEN },
    });
    t.equal(forced.status, 200);
    const reached = legacy.seen.slice(before);
    for (const request of reached) {
      t.notOk("turnout-token" in request.headers, "turnout-token never reaches legacy");
      t.notOk("turnout-backend" in request.headers, "turnout-backend never reaches legacy");
    }
  },
);

t.test("no responders on NATS falls back to legacy and is counted", async (t) => {
  const before = legacy.seen.length;
  const res = await fetch(url("/v1/orders/o-77"));
  t.equal(res.status, 200, "legacy served the request");
  t.same(await res.json(), { id: "o-77" });
  t.equal(legacy.seen.length, before + 1);
  const metrics = await (await fetch(`${stack.gateway.adminUrl}/metrics`)).text();
  t.match(metrics, /turnout_fallbacks_total\{route="orders.get",reason="no_responders"\} [1-9]/);
  t.match(
    metrics,
    /turnout_requests_total\{route="orders.get",backend="legacy",code="200"\} [1-9]/,
  );
});

t.test(
  "a request forced to NATS is answered by NATS: no fallback hides a missing worker",
  async (t) => {
    const before = legacy.seen.length;
    const res = await fetch(url("/v1/orders/o-78"), {
      headers: { "turnout-backend": "nats", "turnout-token": TOKEN },
    });
    t.equal(res.status, 503);
    t.match(await res.json(), { code: "TURNOUT_ERR_NO_RESPONDERS", route: "orders.get" });
    t.equal(legacy.seen.length, before, "legacy was not asked");
  },
);

t.test("a NATS timeout falls back to legacy on an idempotent route only", async (t) => {
  const get = await fetch(url("/v1/slow/s-1"));
  t.equal(get.status, 200, "the GET was served by legacy after the timeout");
  t.same(await get.json(), { from: "legacy" });
  const post = await fetch(url("/v1/slow"), {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: '{"id":"s-2"}',
  });
  t.equal(post.status, 504, "the write is not run again on legacy");
  const metrics = await (await fetch(`${stack.gateway.adminUrl}/metrics`)).text();
  t.match(metrics, /turnout_fallbacks_total\{route="slow.get",reason="timeout"\} 1/);
  t.notMatch(metrics, /turnout_fallbacks_total\{route="slow.create"/);
});

t.test("an unreachable legacy upstream is a coded 503 problem", async (t) => {
  const res = await fetch(url("/v1/dead/d-1"));
  t.equal(res.status, 503);
  t.match(res.headers.get("content-type"), /^application\/problem\+json/);
  t.match(await res.json(), { code: "TURNOUT_ERR_UPSTREAM_REFUSED", route: "dead.get" });
});

t.test("legacy pass-through keeps status, headers, query and body", async (t) => {
  const res = await fetch(url("/v1/regions/eu/users?dry_run=1&tag=a&tag=b"), {
    method: "POST",
    headers: { "content-type": "application/json", "x-client": "mobile" },
    body: '{"id":"u-5","display_name":"Bob"}',
  });
  t.equal(res.status, 201);
  t.equal(res.headers.get("location"), "/v1/regions/eu/users/u-5");
  t.equal(res.headers.get("x-custom"), "kept");
  t.equal(res.headers.get("set-cookie"), "a=1");
  t.same(await res.json(), { created: "u-5", query: "dry_run=1&tag=a&tag=b" });
  const seen = legacy.seen[legacy.seen.length - 1]!;
  t.equal(seen.url, "/v1/regions/eu/users?dry_run=1&tag=a&tag=b");
  t.equal(seen.body, '{"id":"u-5","display_name":"Bob"}', "body byte for byte");
  t.equal(seen.headers["x-client"], "mobile");
  t.equal(seen.headers["x-forwarded-for"], "127.0.0.1");
  t.equal(seen.headers["x-forwarded-proto"], "http");
});

t.test("shadow compares both sides: a match and a field-level mismatch", async (t) => {
  stack.gateway.cutover.set("users.get", { nats: 100, shadow: 100 });
  t.teardown(() => stack.gateway.cutover.set("users.get", { nats: 30, shadow: 0 }));
  const before = legacy.seen.length;
  t.equal((await fetch(url("/v1/regions/eu/users/u-1"))).status, 200);
  t.equal(
    (await fetch(url("/v1/regions/eu/users/u-diff"), { headers: { "x-request-id": "diff-1" } }))
      .status,
    200,
  );
  await waitUntil(() => stack.gateway.mirrors.inFlight === 0 && legacy.seen.length >= before + 2);

  const metrics = await (await fetch(`${stack.gateway.adminUrl}/metrics`)).text();
  t.match(metrics, /turnout_shadow_total\{route="users.get",result="match"\} 1/);
  t.match(metrics, /turnout_shadow_total\{route="users.get",result="mismatch"\} 1/);

  const res = await admin("/admin/routes/users.get/mismatches");
  t.equal(res.status, 200);
  const { mismatches } = (await res.json()) as { mismatches: Array<Record<string, unknown>> };
  t.equal(mismatches.length, 1);
  t.match(mismatches[0], {
    requestId: "diff-1",
    method: "GET",
    path: "/v1/regions/eu/users/u-diff",
    primary: "nats",
    diffs: [
      { path: "$.email", kind: "changed", primary: "ada@example.com", mirror: "ADA@example.com" },
    ],
  });
});

t.test("shadow NATS requests carry Turnout-Shadow: 1", async (t) => {
  stack.gateway.cutover.set("users.get", { nats: 0, shadow: 100 });
  t.teardown(() => stack.gateway.cutover.set("users.get", { nats: 30, shadow: 0 }));
  const res = await fetch(url("/v1/regions/eu/users/u-1"), {
    headers: { "x-request-id": "mirror-me" },
  });
  t.equal(res.headers.get("x-legacy"), "1", "legacy is primary");
  await waitUntil(() => natsSeen.some((s) => s.requestId === "mirror-me"));
  t.same(
    natsSeen.find((s) => s.requestId === "mirror-me"),
    { requestId: "mirror-me", shadow: true },
  );
});

t.test("a hanging shadow side adds no latency to the primary", async (t) => {
  stack.gateway.cutover.set("users.get", { nats: 100, shadow: 100 });
  t.teardown(() => stack.gateway.cutover.set("users.get", { nats: 30, shadow: 0 }));
  const started = performance.now();
  const res = await fetch(url("/v1/regions/eu/users/hang"));
  const elapsed = performance.now() - started;
  t.equal(res.status, 200, "NATS answered");
  t.ok(
    elapsed < 1000,
    `answered in ${elapsed.toFixed(0)} ms while legacy hangs for the 2 s timeout`,
  );
  await waitUntil(() => stack.gateway.mirrors.inFlight === 0, 5000);
  const metrics = await (await fetch(`${stack.gateway.adminUrl}/metrics`)).text();
  t.match(
    metrics,
    /turnout_shadow_total\{route="users.get",result="error"\} 1/,
    "the hung mirror counts as an error",
  );
});

t.test("a write route is never mirrored without shadowWrites", async (t) => {
  stack.gateway.cutover.set("users.create", { nats: 0, shadow: 100 });
  const natsBefore = natsSeen.length;
  const res = await fetch(url("/v1/regions/eu/users"), {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: '{"id":"u-6"}',
  });
  t.equal(res.status, 201);
  await new Promise((resolve) => setTimeout(resolve, 200));
  t.equal(natsSeen.length, natsBefore, "the write ran once, on legacy only");
});

t.test("the mismatches endpoint needs the bearer token", async (t) => {
  t.equal((await fetch(`${stack.gateway.adminUrl}/admin/routes/users.get/mismatches`)).status, 401);
  t.equal((await admin("/admin/routes/users.get/mismatches", "nope")).status, 401);
  t.equal((await admin("/admin/routes/nope/mismatches")).status, 404);
});

async function waitUntil(condition: () => boolean, ms = 3000): Promise<void> {
  const until = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > until) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
