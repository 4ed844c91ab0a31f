import { request } from "node:http";
import t from "tap";
import {
  DEFAULTS,
  ROUTES,
  type SeenRequest,
  startOrdersResponder,
  startUsersWorker,
} from "../helpers/routes-and-workers.js";
import { startStack, writeRoutes } from "../helpers/stack.js";

const seen: SeenRequest[] = [];
const stack = await startStack(t, writeRoutes(ROUTES, DEFAULTS));
const workers = startUsersWorker(stack.nc, stack.root, seen);
startOrdersResponder(stack.nc, stack.root);
await stack.nc.flush();
t.teardown(async () => {
  for (const worker of workers) await worker.stop();
});

const url = (path: string) => `${stack.gateway.url}${path}`;
const lastSeen = () => seen[seen.length - 1]!;

async function problemOf(res: Response): Promise<Record<string, unknown>> {
  const type = res.headers.get("content-type") ?? "";
  if (!type.startsWith("application/problem+json")) throw new Error(`not problem+json: ${type}`);
  return (await res.json()) as Record<string, unknown>;
}

t.test("a GET is bound from path params and answered in the route's JSON style", async (t) => {
  const res = await fetch(url("/v1/regions/eu-west/users/u-1"));
  t.equal(res.status, 200);
  t.match(res.headers.get("content-type"), /^application\/json/);
  t.equal(
    await res.text(),
    '{"id":"u-1","region":"eu-west","display_name":"Ada","email":"","tier":"TIER_PRO","balance_cents":"0","tags":[],"verified":false,"labels":{}}',
    "proto names, int64 as string, enum names, defaults printed, unset messages omitted",
  );
  t.equal(lastSeen().subject, "svc.users.eu-west.get", "subject template filled from the path");
  t.same(lastSeen().request, { id: "u-1", region: "eu-west" });
});

t.test(
  "the worker gets route, request id, trace context and only the allowed headers",
  async (t) => {
    const res = await fetch(url("/v1/regions/eu/users/u-2"), {
      headers: {
        "x-request-id": "req-abc-123",
        traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        tracestate: "vendor=1",
        "x-user-id": "u-2",
        "accept-language": "fr",
        "x-secret": "never forwarded",
        authorization: "Bearer nope",
      },
    });
    t.equal(res.status, 200);
    t.equal(res.headers.get("x-request-id"), "req-abc-123", "the client's request id comes back");
    const headers = lastSeen().headers;
    t.equal(headers["turnout-route"], "users.get");
    t.equal(headers["x-request-id"], "req-abc-123");
    t.equal(headers.traceparent, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    t.equal(headers.tracestate, "vendor=1");
    t.equal(headers["x-user-id"], "u-2");
    t.equal(headers["accept-language"], "fr");
    t.notOk("x-secret" in headers, "a header the route does not allow stays behind");
    t.notOk("authorization" in headers);
  },
);

t.test("a request without X-Request-Id gets a generated one, returned and passed on", async (t) => {
  const res = await fetch(url("/v1/regions/eu/users/u-3"));
  const id = res.headers.get("x-request-id");
  t.match(id, /^[0-9a-f-]{36}$/);
  t.equal(lastSeen().headers["x-request-id"], id);
});

t.test("query params bind repeated and nested fields", async (t) => {
  const res = await fetch(
    url("/v1/regions/eu/users?page_size=25&tiers=TIER_PRO&tiers=2&near.city=Paris"),
  );
  t.equal(res.status, 200);
  t.same(lastSeen().request, {
    region: "eu",
    page_size: 25,
    tiers: ["TIER_PRO", "TIER_PRO"],
    near: { city: "Paris" },
  });
});

t.test("a body bound to one field, with Http-Status overriding the success status", async (t) => {
  const res = await fetch(url("/v1/regions/eu/users"), {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: '{"id":"u-9","displayName":"Bob","balance_cents":9007199254740993,"tier":"TIER_FREE","created_at":"2024-01-02T03:04:05.5Z"}',
  });
  t.equal(res.status, 201);
  const body = await res.text();
  t.match(
    body,
    /"balance_cents":"9007199254740993"/,
    "int64 past 2^53 given as a bare number stays exact",
  );
  t.match(body, /"created_at":"2024-01-02T03:04:05.500Z"/);
  t.equal(lastSeen().subject, "svc.users.eu.create");
  t.equal((lastSeen().request.user as Record<string, unknown>).balance_cents, "9007199254740993");
});

t.test("each kind of bad input is a 400 problem naming the field", async (t) => {
  const cases: Array<[string, string, string, RegExp]> = [
    ["unknown field", '{"nope":1}', "$.nope", /unknown field/i],
    ["wrong type", '{"id":12}', "$.id", /string/i],
    ["int64 out of range", '{"totalCents":"99999999999999999999"}', "$.totalCents", /range/i],
    ["bad enum name", '{"status":"LOST"}', "$.status", /LOST/],
    ["bad base64", '{"signature":"@@not base64@@"}', "$.signature", /base64/i],
    ["bad Timestamp", '{"placedAt":"2024-13-45T00:00:00Z"}', "$.placedAt", /timestamp/i],
    ["bad Duration", '{"deliveryWindow":"3 days"}', "$.deliveryWindow", /duration/i],
    [
      "two members of a oneof",
      '{"cardToken":"c","invoiceNumber":"i"}',
      "$.invoiceNumber",
      /oneof payment/,
    ],
    ["fraction for an integer", '{"items":[{"quantity":1.5}]}', "$.items[0].quantity", /integer/i],
    ["not JSON at all", '{"id":', "", /invalid JSON/],
    ["a key given twice", '{"id":"a","id":"b"}', "", /key "id" is given twice/],
  ];
  for (const [what, body, field, message] of cases) {
    const res = await fetch(url("/v1/orders"), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    });
    t.equal(res.status, 400, `${what}: 400`);
    const problem = await problemOf(res);
    if (field !== "") t.equal(problem.field, field, `${what}: names the field`);
    if (field !== "") t.match(problem.detail, field, `${what}: the message names the field too`);
    t.match(String(problem.detail), message, `${what}: says what is wrong`);
    t.equal(problem.route, "orders.create");
    t.match(problem.requestId, /.+/);
  }
});

t.test("a path or query param that is not a valid value is a 400 naming it", async (t) => {
  const res = await fetch(url("/v1/regions/eu/users?page_size=ten"));
  t.equal(res.status, 400);
  t.match(await problemOf(res), { code: "TURNOUT_ERR_BAD_PARAM", field: "page_size" });
});

t.test("an empty path param is a 404 naming it, and the worker gets nothing", async (t) => {
  const before = seen.length;
  const res = await fetch(url("/v1/regions/eu/users/"));
  t.equal(res.status, 404);
  t.match(await problemOf(res), {
    code: "TURNOUT_ERR_NOT_FOUND",
    route: "users.get",
    field: "id",
    detail: /path parameter "id" is empty/,
  });
  t.equal(seen.length, before, "no request reached the worker");
});

t.test("a query value that is not percent-encoded UTF-8 is a 400, not passed on raw", async (t) => {
  for (const bad of ["caf%E9", "%zz", "%E2%82", "a+b%zz"]) {
    const res = await fetch(url(`/v1/regions/eu/users?near.city=${bad}`));
    t.equal(res.status, 400, bad);
    const problem = await problemOf(res);
    t.match(problem, { code: "TURNOUT_ERR_BAD_PARAM", field: "near.city" }, bad);
    t.match(problem.detail, /not valid percent-encoded UTF-8/);
  }
  const ignored = await fetch(url("/v1/regions/eu/users?utm=%zz&near.city=caf%C3%A9"));
  t.equal(ignored.status, 200, "an unknown param is ignored, however it is encoded");
  t.same(lastSeen().request, { region: "eu", near: { city: "café" } });
});

t.test("a worker error with the route's error type comes through as the legacy body", async (t) => {
  const res = await fetch(url("/v1/regions/eu/users/missing"));
  t.equal(res.status, 404);
  t.match(res.headers.get("content-type"), /^application\/json/);
  t.equal(await res.text(), '{"error":"not_found","message":"no user missing"}');
});

t.test("a worker error without a body is problem+json with the worker's message", async (t) => {
  const res = await fetch(url("/v1/regions/eu/users/gone"));
  t.equal(res.status, 410);
  t.match(await problemOf(res), { code: "TURNOUT_ERR_WORKER", detail: "user was deleted" });
});

t.test("a worker error code outside 400-599 is a 502", async (t) => {
  const res = await fetch(url("/v1/orders/odd"));
  t.equal(res.status, 502);
  t.match(await problemOf(res), { code: "TURNOUT_ERR_WORKER", detail: /700/ });
});

t.test("an undecodable reply is a 502", async (t) => {
  const res = await fetch(url("/v1/orders/garbage"));
  t.equal(res.status, 502);
  t.match(await problemOf(res), { code: "TURNOUT_ERR_BAD_REPLY" });
});

t.test("Http-Status from the worker sets a success status", async (t) => {
  const res = await fetch(url("/v1/orders/accepted"));
  t.equal(res.status, 202);
  t.equal(await res.text(), '{"id":"accepted"}', "camel names without defaults on this route");
});

t.test(
  "Http-Status 204 or 205 is answered without content, whatever the worker's reply holds",
  async (t) => {
    for (const [id, status] of [
      ["no-content", 204],
      ["reset-content", 205],
    ] as const) {
      for (const method of ["GET", "HEAD"]) {
        const res = await new Promise<{
          status: number;
          headers: Record<string, unknown>;
          body: string;
        }>((resolve, reject) => {
          const req = request(url(`/v1/orders/${id}`), { method }, (answer) => {
            let body = "";
            answer.setEncoding("utf8");
            answer.on("data", (chunk: string) => (body += chunk));
            answer.on("end", () =>
              resolve({ status: answer.statusCode ?? 0, headers: answer.headers, body }),
            );
          });
          req.on("error", reject);
          req.end();
        });
        t.equal(res.status, status, `${method} ${id}`);
        t.equal(res.body, "", `${method} ${id}: no content`);
        t.equal(res.headers["content-type"], undefined, `${method} ${id}: no content type`);
        t.notOk(
          Number(res.headers["content-length"] ?? 0) > 0,
          `${method} ${id}: no length of content that is not sent`,
        );
      }
    }
  },
);

t.test("no responders is a 503 at once; a silent worker is a 504 after the timeout", async (t) => {
  let started = performance.now();
  const none = await fetch(url("/v1/ghosts/g-1"));
  const noResponderMs = performance.now() - started;
  t.equal(none.status, 503);
  t.match(await problemOf(none), { code: "TURNOUT_ERR_NO_RESPONDERS" });
  t.ok(
    noResponderMs < 750,
    `503 came in ${noResponderMs.toFixed(0)} ms, not after the 1500 ms timeout`,
  );

  started = performance.now();
  const slow = await fetch(url("/v1/orders/slow"));
  const timeoutMs = performance.now() - started;
  t.equal(slow.status, 504);
  t.match(await problemOf(slow), { code: "TURNOUT_ERR_TIMEOUT" });
  t.ok(timeoutMs >= 290, `504 came after the 300 ms timeout (${timeoutMs.toFixed(0)} ms)`);
});

t.test("a body over the route's limit is a 413", async (t) => {
  const res = await fetch(url("/v1/regions/eu/users"), {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ display_name: "x".repeat(4096) }),
  });
  t.equal(res.status, 413);
  t.match(await problemOf(res), {
    code: "TURNOUT_ERR_BODY_TOO_LARGE",
    detail: /^the request body is larger than the route's limit of \d+ bytes$/,
  });
});

t.test(
  "a body that is not UTF-8 is a 400, another charset a 415: never decoded lossily",
  async (t) => {
    const post = (contentType: string, body: Uint8Array) =>
      fetch(url("/v1/regions/eu/users"), {
        method: "POST",
        headers: { "content-type": contentType },
        body,
      });
    const latin1 = Buffer.from('{"display_name":"caf\xe9"}', "latin1");
    const invalid = await post("application/json", latin1);
    t.equal(invalid.status, 400);
    t.match(await problemOf(invalid), { code: "TURNOUT_ERR_BAD_JSON", detail: /not valid UTF-8/ });
    const declared = await post("application/json; charset=ISO-8859-1", latin1);
    t.equal(declared.status, 415);
    t.match(await problemOf(declared), { detail: /charset "iso-8859-1" is not supported/ });
    const withBom = await post("application/json", Buffer.from('\ufeff{"display_name":"café"}'));
    t.equal(withBom.status, 201, "a leading byte order mark is ignored, as RFC 8259 allows");
    t.match(lastSeen().request, { user: { display_name: "café" } });
    const utf8 = Buffer.from('{"display_name":"café"}');
    for (const contentType of [
      "application/json; charset=UTF-8",
      'application/json;charset="utf8"',
      "application/merge-patch+json; charset=utf-8",
      "Application/Vnd.Api+JSON ; charset=UTF-8",
    ]) {
      const res = await post(contentType, utf8);
      t.equal(res.status, 201, contentType);
      t.match(lastSeen().request, { user: { display_name: "café" } });
    }
  },
);

t.test("a GET with a body is a 400, not served with the body dropped", async (t) => {
  const get = (method: string, headers: Record<string, string>, body?: string) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(url("/v1/regions/eu/users"), { method, headers }, (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => (text += chunk));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
      });
      req.on("error", reject);
      req.end(body);
    });
  const json = { "content-type": "application/json" };
  const withLength = await get("GET", { ...json, "content-length": "15" }, '{"page_size":3}');
  t.equal(withLength.status, 400);
  t.match(JSON.parse(withLength.body), {
    code: "TURNOUT_ERR_BAD_JSON",
    detail: /a GET request takes no body/,
  });
  const chunked = await get("GET", { ...json, "transfer-encoding": "chunked" }, '{"page_size":3}');
  t.equal(chunked.status, 400);
  t.equal((await get("HEAD", { ...json, "content-length": "2" }, "{}")).status, 400);
  t.equal((await get("GET", { "content-length": "0" })).status, 200, "an empty body is no body");
});

t.test("a body that is not JSON is a 415 naming its type and the ones taken", async (t) => {
  const post = (headers: Record<string, string>) =>
    fetch(url("/v1/regions/eu/users"), { method: "POST", headers, body: "hello" });
  const text = await post({ "content-type": "text/plain" });
  t.equal(text.status, 415);
  t.match(await problemOf(text), {
    code: "TURNOUT_ERR_UNSUPPORTED_MEDIA_TYPE",
    detail: /content type "text\/plain" is not supported: .*application\/json/,
  });
  const malformed = await post({ "content-type": "" });
  t.equal(malformed.status, 415);
  t.match(await problemOf(malformed), {
    detail: /the Content-Type header is not a valid media type/,
  });
  const untyped = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request(url("/v1/regions/eu/users"), { method: "POST" }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end("{}");
  });
  t.equal(untyped.status, 415);
  t.match(JSON.parse(untyped.body), { detail: /a request body needs a Content-Type/ });
});

t.test(
  "an unknown path is a 404 and a known path with another method a 405 with Allow",
  async (t) => {
    const missing = await fetch(url("/v2/nothing"));
    t.equal(missing.status, 404);
    t.match(await problemOf(missing), { code: "TURNOUT_ERR_NOT_FOUND" });
    t.match(missing.headers.get("x-request-id"), /.+/, "error answers carry the request id too");
    const wrong = await fetch(url("/v1/orders"), { method: "DELETE" });
    t.equal(wrong.status, 405);
    t.equal(wrong.headers.get("allow"), "POST");
    const encoded = await fetch(url("/v1/%6Frders"), { method: "DELETE" });
    t.equal(encoded.status, 405, "the path is compared decoded, as the router does");
    t.equal(encoded.headers.get("allow"), "POST");
    const slash = await fetch(url("/v1/orders/"), { method: "POST" });
    t.equal(slash.status, 404, "a trailing slash is another path: 404, not 405 'use POST'");
    const bodies: Record<string, string>[] = [
      { "content-type": "text/plain" },
      { "content-type": "application/json", "content-encoding": "zstd" },
      { "content-type": "application/json; charset=latin1" },
    ];
    for (const headers of bodies) {
      const what = JSON.stringify(headers);
      const unknown = await fetch(url("/v2/nothing"), { method: "POST", headers, body: "x" });
      t.equal(unknown.status, 404, `no route is a 404 whatever the body: ${what}`);
      await unknown.arrayBuffer();
      const otherMethod = await fetch(url("/v1/orders/o-1"), {
        method: "POST",
        headers,
        body: "x",
      });
      t.equal(otherMethod.status, 405, `another method is a 405 whatever the body: ${what}`);
      t.ok(otherMethod.headers.get("allow"), "with Allow");
      await otherMethod.arrayBuffer();
    }
  },
);

t.test("metrics count requests by route, backend and code, with payload sizes", async (t) => {
  const text = await (await fetch(`${stack.gateway.adminUrl}/metrics`)).text();
  t.match(text, /turnout_requests_total\{route="users.get",backend="nats",code="200"\} [1-9]/);
  t.match(text, /turnout_requests_total\{route="orders.create",backend="gateway",code="400"\} 11/);
  t.match(text, /turnout_requests_total\{route="ghost.get",backend="gateway",code="503"\} 1/);
  t.match(text, /turnout_requests_total\{route="orders.get",backend="nats",code="504"\} 1/);
  t.match(text, /turnout_requests_total\{route="_unmatched",backend="gateway",code="404"\} 5/);
  t.match(text, /turnout_request_duration_seconds_count\{route="users.get",backend="nats"\} [1-9]/);
  t.match(
    text,
    /turnout_payload_bytes_count\{route="users.create",direction="request",format="json"\} 6/,
  );
  t.match(
    text,
    /turnout_payload_bytes_count\{route="users.create",direction="request",format="protobuf"\} 6/,
  );
  t.match(
    text,
    /turnout_payload_bytes_count\{route="users.get",direction="response",format="json"\} [1-9]/,
  );
  t.match(text, /process_cpu_seconds_total/);
  t.notMatch(text, /route="\/v/, "no raw paths as labels");
});

t.test("subject injection attempts are 400s and publish nothing", async (t) => {
  const published: string[] = [];
  const spy = stack.nc.subscribe(">", {
    callback: (_err, msg) => {
      published.push(msg.subject);
    },
  });
  t.teardown(() => spy.unsubscribe());
  await stack.nc.flush();

  const attempts = [
    "eu%2Ewest",
    "eu.west",
    "%2A",
    "%3E",
    "eu%20west",
    "eu%09",
    "eu%0D%0APUB%20x",
    "eu%00",
    "%E2%80%83",
  ];
  for (const region of attempts) {
    const res = await fetch(url(`/v1/regions/${region}/users/u-1`));
    t.equal(res.status, 400, `region ${region} is refused`);
    t.match(await problemOf(res), { code: "TURNOUT_ERR_BAD_SUBJECT_TOKEN", field: "region" });
  }
  const empty = await fetch(url("/v1/regions//users/u-1"));
  t.equal(empty.status, 404, "an empty region is no route, as an empty id is");
  t.match(await problemOf(empty), { code: "TURNOUT_ERR_NOT_FOUND", field: "region" });

  const control = await fetch(url("/v1/regions/eu/users/u-1"));
  t.equal(control.status, 200, "a valid request after them goes through");
  await stack.nc.flush();
  // Replies, and the cutover store asking JetStream again (this server has none): not requests.
  const requests = published.filter(
    (subject) => !subject.startsWith("_INBOX.") && !subject.startsWith("$JS.API."),
  );
  t.same(requests, ["svc.users.eu.get"], "the wildcard spy saw only the valid request");
});

t.test("the admin API is locked (403) when no admin token is configured", async (t) => {
  const res = await fetch(`${stack.gateway.adminUrl}/admin/routes/users.get/mismatches`, {
    headers: { authorization: "Bearer anything" },
  });
  t.equal(res.status, 403);
  t.match(await problemOf(res), { code: "TURNOUT_ERR_ADMIN_LOCKED" });
});
