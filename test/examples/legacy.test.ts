/**
 * The example legacy HTTP service (examples/legacy-server.ts), started in-process on
 * free ports. Its answers are checked as exact text, and against the NATS side:
 * the worker's handlers (examples/services.ts) called with the request the gateway
 * binds from the same HTTP request, their reply printed by the gateway's own codec
 * with routes.yaml's json options. The two must agree on every request except the
 * deliberate mismatch (the email of u-1002 on users.get).
 */
import { spawn } from "node:child_process";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type protobuf from "protobufjs";
import t, { type Test } from "tap";
import { DEMO_MISMATCH_USER, type Legacy, startLegacy } from "../../examples/legacy-server.js";
import { ExampleServices } from "../../examples/services.js";
import { compileRouteCodec, parseJsonBody, type Query } from "../../src/codec/index.js";
import { loadConfigAndProtos } from "../../src/config/load.js";
import type { RouteConfig } from "../../src/config/types.js";
import { ServiceError, type WorkerContext } from "../../src/worker/index.js";

const ROOT = resolve(fileURLToPath(import.meta.url), "../../..");
const { config, root } = loadConfigAndProtos(join(ROOT, "routes.yaml"));
const NOW = new Date("2025-01-02T03:04:05.678Z");
const JSON_TYPE = "application/json; charset=utf-8";

interface Answer {
  status: number;
  body: string;
}

/** The NATS side as the gateway sees it, without NATS: bind, handle, print. */
class NatsSide {
  readonly #services = new ExampleServices(root, { now: () => NOW });
  readonly #endpoints = new Map(this.#services.endpoints().map((e) => [e.subject, e]));

  call(method: string, url: string, body?: string): Answer {
    const { route, params, query } = routeOf(method, url);
    const codec = compileRouteCodec(root, route);
    const endpoint = this.#endpoints.get(route.subject.replace(/\{\w+\}/g, "*"))!;
    const payload = codec.encodeRequest(
      params,
      query,
      body === undefined ? undefined : parseJsonBody(body),
    );
    const ctx: WorkerContext = {
      subject: route.subject.replace(/\{(\w+)\}/g, (_, name: string) => params[name] ?? ""),
      headers: undefined,
      requestId: "r-1",
      route: route.name,
      httpStatus: undefined,
    };
    try {
      const reply = endpoint.handle(codec.requestType.decode(payload), ctx);
      const bytes = codec.responseType.encode(reply).finish();
      return { status: ctx.httpStatus ?? 200, body: codec.decodeResponse(bytes) };
    } catch (error) {
      if (!(error instanceof ServiceError)) throw error;
      const errorType = codec.errorType as protobuf.Type;
      const bytes = errorType.encode(errorType.fromObject(error.body ?? {})).finish();
      return { status: error.code, body: codec.decodeError(bytes)! };
    }
  }
}

/** The routes.yaml route of a request, with its path params and query as Fastify gives them. */
function routeOf(
  method: string,
  url: string,
): { route: RouteConfig; params: Record<string, string>; query: Query } {
  const parsed = new URL(url, "http://x");
  const segments = parsed.pathname.split("/");
  for (const route of config.routes) {
    const pattern = route.path.split("/");
    if (route.method !== method || pattern.length !== segments.length) continue;
    const params: Record<string, string> = {};
    if (
      pattern.every((part, i) => {
        if (part.startsWith(":")) params[part.slice(1)] = decodeURIComponent(segments[i]!);
        return part.startsWith(":") || part === segments[i];
      })
    ) {
      const query: Query = {};
      for (const key of new Set(parsed.searchParams.keys())) {
        const all = parsed.searchParams.getAll(key);
        query[key] = all.length === 1 ? all[0]! : all;
      }
      return { route, params, query };
    }
  }
  throw new Error(`no route in routes.yaml for ${method} ${url}`);
}

async function legacyOf(t: Test, options: { bodyLimit?: number } = {}): Promise<Legacy> {
  const legacy = await startLegacy({ usersPort: 0, ordersPort: 0, now: () => NOW, ...options });
  t.teardown(() => legacy.close());
  return legacy;
}

interface HttpAnswer extends Answer {
  headers: Headers;
}

async function request(
  legacy: Legacy,
  method: string,
  url: string,
  body?: string,
  contentType = "application/json",
): Promise<HttpAnswer> {
  const base = url.startsWith("/v1/orders") ? legacy.ordersUrl : legacy.usersUrl;
  const response = await fetch(`${base}${url}`, {
    method,
    ...(body === undefined ? {} : { body, headers: { "content-type": contentType } }),
  });
  return { status: response.status, body: await response.text(), headers: response.headers };
}

const ADA =
  '{"id":"u-1001","region":"eu-west","display_name":"Ada Lovelace","email":"ada@example.com",' +
  '"tier":"TIER_PRO","balance_cents":"9007199254740993","tags":["early-adopter","beta"],' +
  '"address":{"street":"12 St James\'s Sq","city":"London","country_code":"GB","postal_code":"SW1Y 4JH"},' +
  '"created_at":"2021-03-04T05:06:07.123Z","nickname":"ada","verified":true,"labels":{"team":"analytics"}}';
const GRACE_AS_STORED =
  '{"id":"u-1002","region":"eu-west","display_name":"Grace Hopper","email":"grace@example.com",' +
  '"tier":"TIER_ENTERPRISE","balance_cents":"125000","tags":[],' +
  '"created_at":"2022-11-30T00:00:00Z","verified":false,"labels":{}}';
const GRACE_AS_LEGACY_SHOWS = GRACE_AS_STORED.replace('"grace@', '"Grace@');

t.test(
  "users.get of u-1001 is the seed user, printed as the gateway prints the worker",
  async (t) => {
    const legacy = await legacyOf(t);
    const answer = await request(legacy, "GET", "/v1/regions/eu-west/users/u-1001");
    t.equal(answer.status, 200);
    t.equal(answer.headers.get("content-type"), JSON_TYPE);
    t.equal(answer.body, ADA, "snake_case, int64 as a string, every field");
    t.same(
      new NatsSide().call("GET", "/v1/regions/eu-west/users/u-1001"),
      { status: 200, body: ADA },
      "the NATS side prints the same text",
    );
  },
);

t.test(
  "users.get of u-1002 is the deliberate mismatch: a capitalised email, on legacy only",
  async (t) => {
    t.same(DEMO_MISMATCH_USER, { region: "eu-west", id: "u-1002" });
    const legacy = await legacyOf(t);
    const answer = await request(legacy, "GET", "/v1/regions/eu-west/users/u-1002");
    t.equal(answer.status, 200);
    t.equal(answer.body, GRACE_AS_LEGACY_SHOWS, "legacy prints Grace@example.com");
    const nats = new NatsSide().call("GET", "/v1/regions/eu-west/users/u-1002");
    t.equal(nats.body, GRACE_AS_STORED, "the worker prints the email as stored");
    t.not(answer.body, nats.body, "so a shadow comparison reports a mismatch");

    // Only there: the list shows the stored email, as the worker's does.
    const list = await request(legacy, "GET", "/v1/regions/eu-west/users?tiers=TIER_ENTERPRISE");
    t.equal(list.body, `{"users":[${GRACE_AS_STORED}],"next_page_token":""}`);
    // And only for u-1002 of eu-west: a user created as u-1002 elsewhere is printed as stored.
    const created = await request(
      legacy,
      "POST",
      "/v1/regions/us-east/users",
      '{"id":"u-1002","display_name":"G","email":"grace@example.com"}',
    );
    t.equal(created.status, 201);
    const elsewhere = await request(legacy, "GET", "/v1/regions/us-east/users/u-1002");
    t.match(elsewhere.body, '"email":"grace@example.com"');
  },
);

t.test("users.get of a missing user is a 404 with the worker's error body", async (t) => {
  const legacy = await legacyOf(t);
  const expected = '{"error":"not_found","message":"no user u-404 in eu-west"}';
  const answer = await request(legacy, "GET", "/v1/regions/eu-west/users/u-404");
  t.equal(answer.status, 404);
  t.equal(answer.headers.get("content-type"), JSON_TYPE);
  t.equal(answer.body, expected);
  t.same(new NatsSide().call("GET", "/v1/regions/eu-west/users/u-404"), {
    status: 404,
    body: expected,
  });
  const otherRegion = await request(legacy, "GET", "/v1/regions/us-east/users/u-1001");
  t.equal(otherRegion.body, '{"error":"not_found","message":"no user u-1001 in us-east"}');
});

t.test(
  "users.get with a field mask prints the masked fields, the others at their defaults",
  async (t) => {
    const legacy = await legacyOf(t);
    const answer = await request(
      legacy,
      "GET",
      "/v1/regions/eu-west/users/u-1001?fields=displayName,email",
    );
    t.equal(
      answer.body,
      '{"id":"","region":"","display_name":"Ada Lovelace","email":"ada@example.com",' +
        '"tier":"TIER_UNSPECIFIED","balance_cents":"0","tags":[],"verified":false,"labels":{}}',
    );
    const bad = await request(legacy, "GET", "/v1/regions/eu-west/users/u-1001?fields=shoe_size");
    t.same(
      { status: bad.status, body: bad.body },
      {
        status: 400,
        body: '{"error":"invalid_argument","message":"fields: unknown field shoe_size"}',
      },
    );
  },
);

t.test(
  "users.list pages with opaque tokens and filters by repeated tiers and near.*",
  async (t) => {
    const legacy = await legacyOf(t);
    const first = await request(legacy, "GET", "/v1/regions/eu-west/users?page_size=1");
    t.equal(first.status, 200);
    t.equal(first.headers.get("content-type"), JSON_TYPE);
    t.equal(first.body, `{"users":[${ADA}],"next_page_token":"b2Zmc2V0OjE"}`);
    const second = await request(
      legacy,
      "GET",
      "/v1/regions/eu-west/users?page_size=1&page_token=b2Zmc2V0OjE",
    );
    t.equal(second.body, `{"users":[${GRACE_AS_STORED}],"next_page_token":""}`);

    const tiers = await request(
      legacy,
      "GET",
      "/v1/regions/eu-west/users?tiers=TIER_PRO&tiers=TIER_ENTERPRISE&pageSize=1",
    );
    t.equal(tiers.body, first.body, "two tiers, lowerCamel pageSize");
    const london = await request(legacy, "GET", "/v1/regions/eu-west/users?near.city=london");
    t.equal(london.body, `{"users":[${ADA}],"next_page_token":""}`);
    const nobody = await request(legacy, "GET", "/v1/regions/mars/users");
    t.equal(nobody.body, '{"users":[],"next_page_token":""}');
    const badToken = await request(legacy, "GET", "/v1/regions/eu-west/users?page_token=nope");
    t.same(
      { status: badToken.status, body: badToken.body },
      {
        status: 400,
        body: '{"error":"invalid_argument","message":"page_token: not a token from a previous page"}',
      },
    );
  },
);

t.test(
  "users.create answers 201 with a Location and the stored user, readable after",
  async (t) => {
    const legacy = await legacyOf(t);
    const body =
      '{"display_name":" Alan Turing ","email":"alan@example.com","tier":"TIER_PRO",' +
      '"balanceCents":12,"tags":["x"],"address":{"city":"Wilmslow","countryCode":"GB"},' +
      '"nickname":"","labels":{"b":"2","a":"1"}}';
    const expected =
      '{"id":"u-2001","region":"eu-west","display_name":"Alan Turing","email":"alan@example.com",' +
      '"tier":"TIER_PRO","balance_cents":"12","tags":["x"],' +
      '"address":{"street":"","city":"Wilmslow","country_code":"GB","postal_code":""},' +
      '"created_at":"2025-01-02T03:04:05.678Z","nickname":"","verified":false,"labels":{"b":"2","a":"1"}}';
    const created = await request(legacy, "POST", "/v1/regions/eu-west/users", body);
    t.equal(created.status, 201);
    t.equal(created.headers.get("location"), "/v1/regions/eu-west/users/u-2001");
    t.equal(created.headers.get("content-type"), JSON_TYPE);
    t.equal(created.body, expected);
    t.same(new NatsSide().call("POST", "/v1/regions/eu-west/users", body), {
      status: 201,
      body: expected,
    });
    const read = await request(legacy, "GET", "/v1/regions/eu-west/users/u-2001");
    t.equal(read.body, expected);

    const again = await request(
      legacy,
      "POST",
      "/v1/regions/eu-west/users",
      '{"id":"u-2001","display_name":"A","email":"a@example.com"}',
    );
    t.same(
      { status: again.status, body: again.body },
      {
        status: 409,
        body: '{"error":"already_exists","message":"user u-2001 already exists in eu-west"}',
      },
    );
    const invalid = await request(legacy, "POST", "/v1/regions/eu-west/users", '{"email":"nope"}');
    t.same(
      { status: invalid.status, body: invalid.body },
      {
        status: 400,
        body: '{"error":"invalid_argument","message":"display_name: required; email: not an email address"}',
      },
    );
  },
);

const O_5001 =
  '{"id":"o-5001","userId":"u-1001","status":"PAID","items":[' +
  '{"sku":"BOOK-NOTES-1843","quantity":1,"unitPriceCents":"4200"},' +
  '{"sku":"PEN-BRASS","quantity":3,"unitPriceCents":"350"}],"totalCents":"4987",' +
  '"placedAt":"2024-05-06T07:08:09.250Z","deliveryWindow":"172800s",' +
  '"metadata":{"channel":"web","gift":false,"campaign":{"name":"spring","round":2}},' +
  '"cardToken":"tok_visa_4242","signature":"c2lnbmVkLWJ5LWxlZ2FjeQ==","discountRate":0.05}';
const O_5002 =
  '{"id":"o-5002","userId":"u-1002","status":"SHIPPED","items":[' +
  '{"sku":"COMPILER-A0","quantity":1,"unitPriceCents":"9007199254740993"}],' +
  '"totalCents":"9007199254740993","placedAt":"2024-06-01T12:00:00Z","metadata":{},' +
  '"invoiceNumber":"INV-2024-0042"}';

t.test(
  "orders.get prints lowerCamel names and leaves defaults out, as the NATS side",
  async (t) => {
    const legacy = await legacyOf(t);
    const nats = new NatsSide();
    for (const [id, expected] of [
      ["o-5001", O_5001],
      ["o-5002", O_5002],
    ] as const) {
      const answer = await request(legacy, "GET", `/v1/orders/${id}`);
      t.equal(answer.status, 200, id);
      t.equal(answer.headers.get("content-type"), JSON_TYPE, id);
      t.equal(answer.body, expected, id);
      t.same(nats.call("GET", `/v1/orders/${id}`), { status: 200, body: expected }, id);
    }
    const notFound = { status: 404, body: '{"code":"not_found","detail":"no order o-1"}' };
    const missing = await request(legacy, "GET", "/v1/orders/o-1");
    t.same({ status: missing.status, body: missing.body }, notFound);
    t.same(nats.call("GET", "/v1/orders/o-1"), notFound);
  },
);

t.test(
  "orders.create answers 201 with a Location and the order, totals exact past 2^53",
  async (t) => {
    const legacy = await legacyOf(t);
    const body =
      '{"userId":"u-1002","items":[{"sku":"X","quantity":3,"unit_price_cents":9007199254740993}],' +
      '"discountRate":0.1,"deliveryWindow":"1.5s","metadata":{"channel":"test","n":[1,null]},' +
      '"signature":"c2ln-_8","invoiceNumber":""}';
    const expected =
      '{"id":"o-6001","userId":"u-1002","status":"PENDING","items":[' +
      '{"sku":"X","quantity":3,"unitPriceCents":"9007199254740993"}],' +
      '"totalCents":"24319437987800681","placedAt":"2025-01-02T03:04:05.678Z",' +
      '"deliveryWindow":"1.500s","metadata":{"channel":"test","n":[1,null]},' +
      '"invoiceNumber":"","signature":"c2ln+/8=","discountRate":0.1}';
    const created = await request(legacy, "POST", "/v1/orders", body);
    t.equal(created.status, 201);
    t.equal(created.headers.get("location"), "/v1/orders/o-6001");
    t.equal(created.body, expected);
    t.same(new NatsSide().call("POST", "/v1/orders", body), { status: 201, body: expected });
    t.equal((await request(legacy, "GET", "/v1/orders/o-6001")).body, expected);

    const bad = await request(legacy, "POST", "/v1/orders", '{"userId":"u-404"}');
    t.same(
      { status: bad.status, body: bad.body },
      {
        status: 400,
        body: '{"code":"invalid_argument","detail":"user_id: no user u-404; items: at least one line item is required"}',
      },
    );
  },
);

/** Requests run in this order on a fresh legacy and a fresh NATS side: same status, same text. */
const PARITY: ReadonlyArray<readonly [method: string, url: string, body?: string]> = [
  ["GET", "/v1/regions/eu-west/users/u-1001"],
  ["GET", "/v1/regions/eu-west/users/u-1001?fields=address.city,created_at,nickname"],
  ["GET", "/v1/regions/eu-west/users/u-1001?fields=nope"],
  ["GET", "/v1/regions/eu-west/users/u-9"],
  ["GET", "/v1/regions/eu-west/users"],
  ["GET", "/v1/regions/eu-west/users?page_size=1&tiers=TIER_PRO&tiers=TIER_ENTERPRISE"],
  ["GET", "/v1/regions/eu-west/users?tiers=2"],
  ["GET", "/v1/regions/eu-west/users?tiers=TIER_UNSPECIFIED"],
  ["GET", "/v1/regions/eu-west/users?near.country_code=gb&near.postalCode=SW1Y%204JH"],
  ["GET", "/v1/regions/eu-west/users?page_size=-1"],
  ["GET", "/v1/regions/eu-west/users?page_token=Zm9v"],
  [
    "POST",
    "/v1/regions/eu-west/users",
    '{"display_name":"Alan Turing","email":"alan@example.com"}',
  ],
  ["POST", "/v1/regions/eu-west/users", '{"displayName":"Bo","email":"bo@example.com","tier":3}'],
  ["POST", "/v1/regions/eu-west/users", '{"display_name":"C","email":"c@x","nickname":null}'],
  ["POST", "/v1/regions/eu-west/users", '{"display_name":"D","email":"d@x","region":"us-east"}'],
  ["POST", "/v1/regions/eu-west/users", '{"display_name":"E","email":"e@x","balance_cents":"-1"}'],
  ["POST", "/v1/regions/eu-west/users", '{"display_name":"F","email":"f@x","id":"bad id"}'],
  [
    "POST",
    "/v1/regions/eu-west/users",
    '{"display_name":"G","email":"g@x","tier":"TIER_UNSPECIFIED"}',
  ],
  ["POST", "/v1/regions/eu-west/users"],
  ["GET", "/v1/regions/eu-west/users?page_size=2&page_token=b2Zmc2V0OjI"],
  ["GET", "/v1/orders/o-5001"],
  ["GET", "/v1/orders/o-5002"],
  ["GET", "/v1/orders/o-404"],
  [
    "POST",
    "/v1/orders",
    '{"userId":"u-1001","items":[{"sku":"A","quantity":"2","unitPriceCents":"5"}]}',
  ],
  ["POST", "/v1/orders", '{"user_id":"u-1001","items":[{"sku":"A","quantity":1}],"card_token":""}'],
  ["POST", "/v1/orders", '{"userId":"u-1001","items":[{}],"discountRate":1,"status":"PAID"}'],
  [
    "POST",
    "/v1/orders",
    '{"userId":"u-1001","items":[{"sku":"A","quantity":1}],"status":"PENDING","id":"o-5001"}',
  ],
  [
    "POST",
    "/v1/orders",
    '{"userId":"u-2001","items":[{"sku":"A","quantity":1}],"deliveryWindow":"-0.25s","metadata":{}}',
  ],
  ["POST", "/v1/orders"],
  ["GET", "/v1/orders/o-6001"],
];

t.test(
  "on every request but the demo mismatch, legacy and the NATS side answer the same",
  async (t) => {
    const legacy = await legacyOf(t);
    const nats = new NatsSide();
    for (const [method, url, body] of PARITY) {
      const name = `${method} ${url}${body === undefined ? "" : ` ${body}`}`;
      const fromLegacy = await request(legacy, method, url, body);
      t.same(
        { status: fromLegacy.status, body: fromLegacy.body },
        nats.call(method, url, body),
        name,
      );
    }
  },
);

t.test(
  "requests the gateway would refuse get a 400 in the service's own error shape",
  async (t) => {
    const legacy = await legacyOf(t);
    const cases: Array<[string, string, string, number, string]> = [
      [
        "POST",
        "/v1/regions/eu-west/users",
        '{"display_name":"A","email":"a@x","tier":"TIER_GOLD"}',
        400,
        '{"error":"invalid_argument","message":"tier: expected one of TIER_UNSPECIFIED, TIER_FREE, TIER_PRO, TIER_ENTERPRISE, got \\"TIER_GOLD\\""}',
      ],
      [
        "POST",
        "/v1/regions/eu-west/users",
        '{"display_name":"A","shoe":1}',
        400,
        '{"error":"invalid_argument","message":"user: unknown field \\"shoe\\""}',
      ],
      [
        "POST",
        "/v1/regions/eu-west/users",
        "{oops",
        400,
        '{"error":"invalid_argument","message":"invalid JSON: ',
      ],
      [
        "POST",
        "/v1/orders",
        '{"userId":"u-1001","cardToken":"a","invoiceNumber":"b"}',
        400,
        '{"code":"invalid_argument","detail":"payment: both card_token and invoice_number are set; set at most one"}',
      ],
      [
        "POST",
        "/v1/orders",
        '{"userId":"u-1001","items":[{"sku":"A","quantity":1.5}]}',
        400,
        '{"code":"invalid_argument","detail":"items[0].quantity: expected an integer from 0 to 4294967295, got 1.5"}',
      ],
      [
        "GET",
        "/v1/regions/eu-west/users?page_size=1&page_size=2",
        "",
        400,
        '{"error":"invalid_argument","message":"page_size: given 2 times, but it is not repeated"}',
      ],
    ];
    for (const [method, url, body, status, text] of cases) {
      const answer = await request(legacy, method, url, body === "" ? undefined : body);
      t.equal(answer.status, status, `${method} ${url} ${body}`);
      t.ok(answer.body.startsWith(text), `${answer.body} starts with ${text}`);
      t.equal(answer.headers.get("content-type"), JSON_TYPE);
    }
  },
);

t.test(
  "unknown paths are 404, other methods 405 with Allow, big bodies 413, non-JSON 415",
  async (t) => {
    const legacy = await legacyOf(t, { bodyLimit: 100 });
    const unknown = await request(legacy, "GET", "/v1/regions/eu-west/people");
    t.same(
      { status: unknown.status, body: unknown.body },
      {
        status: 404,
        body: '{"error":"not_found","message":"no route GET /v1/regions/eu-west/people"}',
      },
    );
    // Each port serves its own service only.
    const ordersOnUsers = await fetch(`${legacy.usersUrl}/v1/orders/o-5001`);
    t.equal(ordersOnUsers.status, 404);
    await ordersOnUsers.text();

    const wrongMethod = await request(legacy, "DELETE", "/v1/orders/o-5001");
    t.equal(wrongMethod.status, 405);
    t.equal(wrongMethod.headers.get("allow"), "GET");
    t.equal(
      wrongMethod.body,
      '{"code":"method_not_allowed","detail":"DELETE is not allowed here (GET)"}',
    );
    const big = await request(legacy, "POST", "/v1/orders", `{"id":"${"x".repeat(200)}"}`);
    t.equal(big.status, 413);
    t.equal(big.body, '{"code":"payload_too_large","detail":"the body is over 100 bytes"}');
    const text = await request(legacy, "POST", "/v1/orders", "id=1", "text/plain");
    t.equal(text.status, 415);
    t.equal(
      text.body,
      '{"code":"unsupported_media_type","detail":"send the body as application/json"}',
    );
  },
);

t.test("each start has its own data, seeded afresh", async (t) => {
  const one = await legacyOf(t);
  const two = await legacyOf(t);
  const body = '{"userId":"u-1001","items":[{"sku":"A","quantity":1}]}';
  t.equal((await request(one, "POST", "/v1/orders", body)).status, 201);
  t.equal((await request(one, "GET", "/v1/orders/o-6001")).status, 200);
  t.equal((await request(two, "GET", "/v1/orders/o-6001")).status, 404, "not in the other");
  t.equal(
    (await request(two, "POST", "/v1/orders", body)).headers.get("location"),
    "/v1/orders/o-6001",
  );
});

t.test("the legacy process logs one ready line, serves, and exits 0 on SIGTERM", async (t) => {
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      join(ROOT, "examples/legacy.ts"),
      "--users-port",
      "0",
      "--orders-port",
      "0",
    ],
    { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] },
  );
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  const exited = new Promise<number | null>((done) => child.once("exit", (code) => done(code)));
  const lines: string[] = [];
  const ready = await new Promise<string>((done, fail) => {
    createInterface({ input: child.stdout! }).on("line", (line) => {
      lines.push(line);
      if (lines.length === 1) done(line);
    });
    child.once("exit", (code) => fail(new Error(`exited with ${code} before it was ready`)));
  });
  const match = /^legacy ready on :(\d+) \(users\), :(\d+) \(orders\)$/.exec(ready);
  t.ok(match, `the ready line: ${ready}`);
  const users = await fetch(`http://127.0.0.1:${match![1]}/v1/regions/eu-west/users/u-1001`);
  t.equal(await users.text(), ADA);
  const orders = await fetch(`http://127.0.0.1:${match![2]}/v1/orders/o-5002`);
  t.equal(await orders.text(), O_5002);
  child.kill("SIGTERM");
  t.equal(await exited, 0);
  t.same(lines, [ready, "legacy: SIGTERM received, stopping", "legacy: stopped, bye"]);
});

t.test("the legacy process refuses a bad port with its usage, exit 2", async (t) => {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", join(ROOT, "examples/legacy.ts"), "--users-port", "99999"],
    { cwd: ROOT, stdio: ["ignore", "ignore", "pipe"] },
  );
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((done) => child.once("exit", done));
  t.equal(code, 2);
  t.match(stderr, /--users-port must be a port from 0 to 65535, got "99999"/);
  t.match(stderr, /usage: legacy/);
});
