/**
 * Property test of the public port: random JSON, random bytes, random path
 * params and query strings, each sent as a real HTTP request to a real gateway
 * with real workers. Whatever comes in, the answer is a 4xx problem+json (or the
 * worker's 2xx when the input happens to be valid), never a 5xx, and the gateway
 * stays up. FUZZ_SEED=<n> replays a run; FUZZ_RUNS=<n> changes its length.
 */
import { Agent, request as httpRequest } from "node:http";
import fc from "fast-check";
import type protobuf from "protobufjs";
import t from "tap";
import { startWorker } from "../../src/worker/index.js";
import { startStack, writeRoutes } from "../helpers/stack.js";

const ROUTES = `  - name: orders.put
    method: POST
    path: /v1/orders/:id
    subject: svc.fuzz.orders.put
    request: orders.v1.Order
    response: orders.v1.Order
    body: "*"
  - name: users.create
    method: POST
    path: /v1/regions/:region/users
    subject: svc.fuzz.users.{region}.create
    request: users.v1.CreateUserRequest
    response: users.v1.User
    body: user
    bodyLimit: 4KiB
  - name: users.list
    method: GET
    path: /v1/regions/:region/users
    subject: svc.fuzz.users.{region}.list
    request: users.v1.ListUsersRequest
    response: users.v1.ListUsersResponse
`;

const stack = await startStack(t, writeRoutes(ROUTES));
const workers = [
  startWorker({
    nc: stack.nc,
    root: stack.root,
    subject: "svc.fuzz.orders.put",
    requestType: "orders.v1.Order",
    responseType: "orders.v1.Order",
    handle: (order: protobuf.Message) => order,
  }),
  startWorker({
    nc: stack.nc,
    root: stack.root,
    subject: "svc.fuzz.users.*.create",
    requestType: "users.v1.CreateUserRequest",
    responseType: "users.v1.User",
    handle: (req: protobuf.Message & { user?: protobuf.Message }, ctx) => {
      ctx.httpStatus = 201;
      return req.user ?? {};
    },
  }),
  startWorker({
    nc: stack.nc,
    root: stack.root,
    subject: "svc.fuzz.users.*.list",
    requestType: "users.v1.ListUsersRequest",
    responseType: "users.v1.ListUsersResponse",
    handle: () => ({ users: [], next_page_token: "" }),
  }),
];
await stack.nc.flush();
const agent = new Agent({ keepAlive: true, maxSockets: 4 });
t.teardown(async () => {
  agent.destroy();
  for (const worker of workers) await worker.stop();
});

const { hostname, port } = new URL(stack.gateway.url);

interface Answer {
  status: number;
  contentType: string;
  body: string;
}

interface FuzzRequest {
  method: "GET" | "POST";
  /** Already encoded as it goes on the wire. */
  path: string;
  headers: Record<string, string>;
  body: Uint8Array | undefined;
}

/** Raw node:http, so that the path goes out as generated (fetch would normalise it). */
function send(req: FuzzRequest): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { ...req.headers };
    if (req.body !== undefined) headers["content-length"] = req.body.byteLength;
    const out = httpRequest(
      { host: hostname, port, method: req.method, path: req.path, headers, agent },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            contentType: String(res.headers["content-type"] ?? ""),
            body: Buffer.concat(chunks).toString(),
          }),
        );
        res.on("error", reject);
      },
    );
    out.on("error", reject);
    out.setTimeout(5000, () => out.destroy(new Error("no answer within 5s")));
    out.end(req.body);
  });
}

// ---- Generators ----

const ORDER_FIELDS = [
  "id",
  "user_id",
  "userId",
  "status",
  "items",
  "total_cents",
  "totalCents",
  "placed_at",
  "placedAt",
  "delivery_window",
  "deliveryWindow",
  "metadata",
  "card_token",
  "cardToken",
  "invoice_number",
  "invoiceNumber",
  "signature",
  "discount_rate",
  "discountRate",
];
const USER_FIELDS = [
  "id",
  "region",
  "display_name",
  "displayName",
  "email",
  "tier",
  "balance_cents",
  "balanceCents",
  "tags",
  "address",
  "created_at",
  "createdAt",
  "nickname",
  "verified",
  "labels",
];
const LIST_FIELDS = [
  "region",
  "page_size",
  "pageSize",
  "page_token",
  "tiers",
  "near",
  "near.city",
  "near.country_code",
  "near.nope",
];

/** Values that sit on the edges of the protobuf JSON mapping. */
const edgeScalar = fc.constantFrom<unknown>(
  0,
  -0,
  1,
  -1,
  1.5,
  2 ** 31,
  -(2 ** 31) - 1,
  2 ** 32,
  2 ** 53,
  2 ** 64,
  1e308,
  -1e308,
  5e-324,
  "",
  "0",
  "-1",
  "1e3",
  "1.0",
  "0x10",
  " 1",
  "NaN",
  "Infinity",
  "-Infinity",
  "9223372036854775807",
  "9223372036854775808",
  "-9223372036854775809",
  "18446744073709551616",
  "PAID",
  "TIER_PRO",
  "paid",
  "2024-01-01T00:00:00Z",
  "2024-13-45T99:99:99Z",
  "0001-01-01T00:00:00Z",
  "9999-12-31T23:59:59.999999999Z",
  "10000-01-01T00:00:00Z",
  "1970-01-01T00:00:00.1234567890Z",
  "3.5s",
  "-315576000001s",
  "1e10s",
  "s",
  "AAEC",
  "AAE=",
  "A",
  "!!!",
  "-_-_",
  "\u0000",
  "\ud800",
  "__proto__",
  true,
  false,
  null,
  [],
  {},
);

const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: edgeScalar },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 1, arbitrary: fc.double() },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 20 }) },
);

/** An object whose keys are mostly real field names, with random values. */
function objectOf(fields: readonly string[], nested: fc.Arbitrary<unknown>): fc.Arbitrary<unknown> {
  const key = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...fields) },
    { weight: 1, arbitrary: fc.constantFrom("__proto__", "constructor", "toString", "@type") },
    { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
  );
  return fc
    .array(fc.tuple(key, fc.oneof({ weight: 3, arbitrary: anyValue }, nested)), { maxLength: 6 })
    .map((entries) => {
      // Built as text: `{ "__proto__": ... }` must stay an own key, as on the wire.
      const parts = entries.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v) ?? "null"}`);
      return { raw: `{${parts.join(",")}}` };
    });
}

const lineItem = objectOf(["sku", "quantity", "unit_price_cents", "unitPriceCents"], anyValue);
const orderNested = fc.oneof(
  fc.array(lineItem, { maxLength: 3 }).map((items) => ({
    raw: `[${items.map((i) => (i as { raw: string }).raw).join(",")}]`,
  })),
  lineItem,
);
const address = objectOf(
  ["street", "city", "country_code", "countryCode", "postal_code"],
  anyValue,
);
const orderObject = objectOf(ORDER_FIELDS, orderNested);
const userObject = objectOf(USER_FIELDS, address);

const asText = (v: unknown): string =>
  typeof v === "object" && v !== null && "raw" in v
    ? (v as { raw: string }).raw
    : JSON.stringify(v);

/** A body: valid-ish objects, any JSON, broken JSON or plain bytes. */
function bodyOf(object: fc.Arbitrary<unknown>): fc.Arbitrary<Uint8Array> {
  const text = fc.oneof(
    { weight: 4, arbitrary: object.map(asText) },
    { weight: 2, arbitrary: fc.jsonValue().map((v) => JSON.stringify(v)) },
    {
      weight: 1,
      arbitrary: fc
        .tuple(object.map(asText), fc.nat(), fc.string({ maxLength: 4 }))
        .map(([s, at, junk]) => s.slice(0, at % (s.length + 1)) + junk),
    },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        "",
        " ",
        "null",
        "[]",
        '"x"',
        "{",
        '{"a":1}{"b":2}',
        "\ufeff{}",
        '{"id":1e999999}',
        "[".repeat(2000),
        `{"metadata":${"[".repeat(500)}${"]".repeat(500)}}`,
        `{"order":${"{".repeat(300)}`,
      ),
    },
  );
  return fc.oneof(
    { weight: 5, arbitrary: text.map((s) => new TextEncoder().encode(s)) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }) },
  );
}

/** encodeURIComponent that also takes lone surrogates (they go out as U+FFFD). */
const pct = (text: string): string =>
  [...Buffer.from(text, "utf8")]
    .map((b) =>
      /[A-Za-z0-9\-_.!~*'()]/.test(String.fromCharCode(b))
        ? String.fromCharCode(b)
        : `%${b.toString(16).toUpperCase().padStart(2, "0")}`,
    )
    .join("");

/** A path segment: usually encoded text, sometimes raw characters and broken escapes. */
const segment = fc.oneof(
  { weight: 3, arbitrary: fc.string({ unit: "binary", maxLength: 12 }).map(pct) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      "eu",
      "u-1",
      "a.b",
      "*",
      ">",
      "%",
      "%zz",
      "%E0%A4%A",
      "%00",
      "..",
      ".",
      "a%2Fb",
      "x".repeat(300),
      "%2e%2e",
    ),
  },
  {
    weight: 1,
    arbitrary: fc
      .array(fc.constantFrom(..."aZ09-_.~!$&'()*+,;=:@%"), { maxLength: 10 })
      .map((cs) => cs.join("")),
  },
);

function queryOf(fields: readonly string[]): fc.Arbitrary<string> {
  const key = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...fields) },
    { weight: 1, arbitrary: fc.string({ maxLength: 8 }).map(pct) },
    { weight: 1, arbitrary: fc.constantFrom("__proto__", "a[b]", "a.", ".a", "%", "") },
  );
  const value = fc.oneof(
    anyValue.map((v) => pct(typeof v === "string" ? v : (JSON.stringify(v) ?? ""))),
    fc.constantFrom("", "%", "%zz", "%E0%A4%A", "a+b", "TIER_PRO", "2", "PAID"),
  );
  return fc
    .array(fc.tuple(key, fc.option(value, { nil: undefined })), { maxLength: 5 })
    .map((pairs) =>
      pairs.length === 0
        ? ""
        : `?${pairs.map(([k, v]) => (v === undefined ? k : `${k}=${v}`)).join("&")}`,
    );
}

const contentType = fc.oneof(
  { weight: 8, arbitrary: fc.constant("application/json") },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      "application/json; charset=utf-8",
      "application/merge-patch+json",
      "application/json; charset=latin1",
      "text/plain",
      "application/x-www-form-urlencoded",
    ),
  },
);

const requests: fc.Arbitrary<FuzzRequest> = fc.oneof(
  fc
    .record({ id: segment, q: queryOf(ORDER_FIELDS), body: bodyOf(orderObject), type: contentType })
    .map(({ id, q, body, type }) => ({
      method: "POST" as const,
      path: `/v1/orders/${id}${q}`,
      headers: { "content-type": type },
      body,
    })),
  fc
    .record({
      region: segment,
      q: queryOf(["region", "user.id", "user.tier"]),
      body: bodyOf(userObject),
      type: contentType,
    })
    .map(({ region, q, body, type }) => ({
      method: "POST" as const,
      path: `/v1/regions/${region}/users${q}`,
      headers: { "content-type": type },
      body,
    })),
  fc.record({ region: segment, q: queryOf(LIST_FIELDS) }).map(({ region, q }) => ({
    method: "GET" as const,
    path: `/v1/regions/${region}/users${q}`,
    headers: {},
    body: undefined,
  })),
);

/** Fastify's own error answers, which never reach the gateway's error handler. */
const FRAMEWORK_CODE =
  /"code":"(FST_ERR_BAD_URL|FST_ERR_MAX_PARAM_LENGTH|FST_ERR_ASYNC_CONSTRAINT)"/;
const frameworkAnswers = new Map<string, string>();

const printable = (req: FuzzRequest) => ({
  ...req,
  body: req.body === undefined ? undefined : Buffer.from(req.body).toString("latin1"),
});

t.test("random requests get a 4xx problem or the worker's 2xx, never a 5xx", async (t) => {
  const numRuns = Number(process.env.FUZZ_RUNS ?? 300);
  const seed = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);
  const statuses = new Map<number, number>();
  const started = Date.now();
  const result = await fc.check(
    fc.asyncProperty(requests, async (req) => {
      const answer = await send(req);
      statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
      if (answer.status >= 500 || answer.status < 200) {
        throw new Error(`status ${answer.status}: ${answer.body}`);
      }
      if (answer.status >= 400 && !answer.contentType.startsWith("application/problem+json")) {
        const code = FRAMEWORK_CODE.exec(answer.body)?.[1];
        if (code !== undefined) {
          // Known: Fastify answers these itself unless the app sets `frameworkErrors`.
          if (!frameworkAnswers.has(code))
            frameworkAnswers.set(code, `${req.path} -> ${answer.status}`);
          return;
        }
        throw new Error(
          `status ${answer.status} is not problem+json: ${answer.contentType} ${answer.body}`,
        );
      }
    }),
    { numRuns, ...(seed === undefined ? {} : { seed }) },
  );
  t.comment(
    `statuses: ${JSON.stringify(Object.fromEntries(statuses))} in ${Date.now() - started}ms`,
  );
  if (result.failed) {
    t.fail(
      `seed ${result.seed} path ${result.counterexamplePath}: ${String(result.errorInstance)}\n` +
        JSON.stringify(printable(result.counterexample![0]), null, 1),
    );
  } else {
    t.pass(`${result.numRuns} random requests, seed ${result.seed}`);
  }
  t.ok(
    [...statuses.keys()].some((s) => s < 300),
    "some inputs were valid and served",
  );
  t.comment(`Fastify-shaped 4xx: ${JSON.stringify(Object.fromEntries(frameworkAnswers))}`);
  t.same(Object.fromEntries(frameworkAnswers), {}, "every 4xx is problem+json");
});

t.test("the gateway is still up afterwards", async (t) => {
  const health = await fetch(`${stack.gateway.adminUrl}/healthz`);
  t.equal(health.status, 200);
  const res = await fetch(`${stack.gateway.url}/v1/orders/o-1`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ status: "PAID", total_cents: "12" }),
  });
  t.equal(res.status, 200);
  t.match(await res.json(), { id: "o-1", status: "PAID", totalCents: "12" });
});
