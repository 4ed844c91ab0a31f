import { jetstreamManager } from "@nats-io/jetstream";
import t from "tap";
import { buildOpenApiDocument } from "../../src/openapi/index.js";
import {
  DEFAULTS,
  ROUTES,
  type SeenRequest,
  startOrdersResponder,
  startUsersWorker,
} from "../helpers/routes-and-workers.js";
import { startStack, writeRoutes } from "../helpers/stack.js";
import { documentSchemas, parametersOf } from "./check.js";

const PUBLISH = `  - name: users.events
    method: POST
    path: /v1/regions/:region/events
    subject: events.users.{region}
    request: users.v1.CreateUserRequest
    response: users.v1.User
    body: user
    mode: publish
`;

const stack = await startStack(t, writeRoutes(ROUTES + PUBLISH, DEFAULTS), { jetstream: true });
const seen: SeenRequest[] = [];
const workers = startUsersWorker(stack.nc, stack.root, seen);
startOrdersResponder(stack.nc, stack.root);
await (await jetstreamManager(stack.nc)).streams.add({ name: "EVENTS", subjects: ["events.>"] });
await stack.nc.flush();
t.teardown(async () => {
  for (const worker of workers) await worker.stop();
});

const doc = buildOpenApiDocument(stack.config, stack.root);
const schemas = documentSchemas(doc);

type Values = Record<string, string | string[]>;

/** The URL of an operation, refusing any parameter the document does not list where it is put. */
function urlOf(path: string, method: string, pathValues: Values, query: Values = {}): string {
  const params = parametersOf(doc, path, method);
  let url = path;
  for (const [name, value] of Object.entries(pathValues)) {
    if (params.get(name)?.in !== "path") throw new Error(`${name} is no path param of ${path}`);
    url = url.replace(`{${name}}`, encodeURIComponent(String(value)));
  }
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (params.get(name)?.in !== "query") throw new Error(`${name} is no query param of ${path}`);
    for (const one of [value].flat()) search.append(name, one);
  }
  const text = search.toString();
  return `${stack.gateway.url}${url}${text === "" ? "" : `?${text}`}`;
}

function send(url: string, method: string, body?: unknown): Promise<Response> {
  if (body === undefined) return fetch(url, { method });
  return fetch(url, {
    method,
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

const USER = "/v1/regions/{region}/users/{id}";
const USERS = "/v1/regions/{region}/users";

t.test("the admin listener serves the document at /openapi.json, without a token", async (t) => {
  const res = await fetch(`${stack.gateway.adminUrl}/openapi.json`);
  t.equal(res.status, 200);
  t.match(res.headers.get("content-type"), /^application\/json/);
  const served = (await res.json()) as { openapi: string };
  t.match(served.openapi, /^3\.1\.\d+$/);
  t.same(served, JSON.parse(JSON.stringify(doc)), "the same document as built from the table");
});

t.test("a GET built from the document gets a reply its 200 schema accepts", async (t) => {
  const res = await send(
    urlOf(USER, "get", { region: "eu", id: "u-1" }, { fields: "displayName" }),
    "GET",
  );
  t.equal(res.status, 200);
  const validate = schemas.response(USER, "get", "200");
  t.ok(validate(await res.json()), JSON.stringify(validate.errors));
});

t.test("repeated, nested and scalar query params bind as documented", async (t) => {
  const query = { page_size: "5", tiers: ["TIER_PRO", "TIER_FREE"], "near.city": "Paris" };
  const res = await send(urlOf(USERS, "get", { region: "eu" }, query), "GET");
  t.equal(res.status, 200);
  t.ok(schemas.response(USERS, "get", "200")(await res.json()));
  t.match(seen.at(-1)?.request, {
    page_size: 5,
    tiers: ["TIER_PRO", "TIER_FREE"],
    near: { city: "Paris" },
  });
});

t.test(
  "a body valid per the request schema is accepted; the 201 fits the 2XX schema",
  async (t) => {
    const body = {
      display_name: "Bo",
      tier: "TIER_FREE",
      balance_cents: "12",
      tags: ["a"],
      labels: { k: "v" },
      nickname: null,
    };
    t.ok(schemas.requestBody(USERS, "post")(body), "the body fits the document");
    const res = await send(urlOf(USERS, "post", { region: "eu" }), "POST", body);
    t.equal(res.status, 201);
    const validate = schemas.response(USERS, "post", "2XX");
    t.ok(validate(await res.json()), JSON.stringify(validate.errors));
  },
);

t.test("a camel-named route round-trips a rich body through its schemas", async (t) => {
  const order = {
    id: "o-1",
    userId: "u-1",
    status: "PAID",
    items: [{ sku: "s", quantity: 2, unitPriceCents: "150" }],
    totalCents: "300",
    placedAt: "2024-05-01T12:30:00Z",
    deliveryWindow: "3600s",
    metadata: { gift: true },
    cardToken: "tok",
    signature: "AAEC",
    discountRate: 0.1,
  };
  t.ok(schemas.requestBody("/v1/orders", "post")(order));
  const res = await send(urlOf("/v1/orders", "post", {}), "POST", order);
  t.equal(res.status, 200);
  const validate = schemas.response("/v1/orders", "post", "200");
  t.ok(validate(await res.json()), JSON.stringify(validate.errors));
});

t.test("bodies the gateway answers 400 to fail the request schema too", async (t) => {
  const bad = [
    { id: "o-1", colour: "red" },
    { cardToken: "a", invoiceNumber: "b" },
    { totalCents: "ten" },
  ];
  for (const body of bad) {
    t.notOk(schemas.requestBody("/v1/orders", "post")(body), JSON.stringify(body));
    const res = await send(urlOf("/v1/orders", "post", {}), "POST", body);
    t.equal(res.status, 400);
    t.match(res.headers.get("content-type"), /^application\/problem\+json/);
    t.ok(
      schemas.response("/v1/orders", "post", "400", "application/problem+json")(await res.json()),
    );
  }
});

t.test("a worker's typed error body fits the error schema of its status", async (t) => {
  const res = await send(urlOf(USER, "get", { region: "eu", id: "missing" }), "GET");
  t.equal(res.status, 404);
  t.match(res.headers.get("content-type"), /^application\/json/);
  t.ok(schemas.response(USER, "get", "404")(await res.json()));
});

t.test("a publish route's 202 fits its schema", async (t) => {
  const path = "/v1/regions/{region}/events";
  const res = await send(urlOf(path, "post", { region: "eu" }), "POST", { display_name: "Ev" });
  t.equal(res.status, 202);
  const validate = schemas.response(path, "post", "202");
  t.ok(validate(await res.json()), JSON.stringify(validate.errors));
});
