import { join } from "node:path";
import t, { type Test } from "tap";
import { DLQ_SUBJECT_PREFIX } from "../../src/backends/nats/dead-letters.js";
import { loadProtos } from "../../src/codec/protos.js";
import { loadConfig } from "../../src/config/load.js";
import { resolveFieldPath } from "../../src/config/proto-checks.js";
import { STATS_SUBJECT } from "../../src/control/plan-stats.js";
import type { ConfigProblem } from "../../src/errors.js";
import { EXAMPLE_PROTOS, problemsOf, route, table, writeTable } from "./fixtures/helpers.js";

/** The problems of a table holding the given routes (all other keys valid). */
function problemsFor(t: Test, routes: string): ConfigProblem[] {
  return problemsOf(t, () => loadConfig(writeTable(t, table(routes))));
}

/** Loads a table that must be valid and returns its first route. */
function firstRoute(t: Test, routes: string) {
  return loadConfig(writeTable(t, table(routes))).routes[0]!;
}

t.test(
  "path syntax: a leading slash, no empty segment, params as whole identifier segments",
  async (t) => {
    const cases: Array<[string, RegExp]> = [
      ["v1/users/:id", /must start with "\/"/],
      ["/v1//users/:id", /empty segment/],
      ["/v1/users/:id/", /empty segment/],
      ["/v1/users/:address.city", /segment ":address.city": a param is a whole segment/],
      ["/v1/users/:id/:id", /names the param ":id" twice/],
      ["/v1/users/*", /segment "\*" holds characters/],
    ];
    for (const [path, message] of cases) {
      const problems = problemsFor(t, route({ path }));
      t.match(problems, [{ key: "routes[0].path", message }], path);
    }
  },
);

t.test("subject: no wildcards, no empty tokens, and {param} only from path params", async (t) => {
  const cases: Array<[string, RegExp]> = [
    ["svc.*.get", /token "\*" may not hold wildcards/],
    ["svc.users.>", /token ">" may not hold wildcards/],
    ["svc..get", /empty token/],
    [".svc.get", /empty token/],
    ["svc.{id}x.get", /a \{param\} is a whole token/],
    [
      "svc.{page_size}.get",
      /\{page_size\} names no path param \(only path params.*path params: id/,
    ],
  ];
  for (const [subject, message] of cases) {
    t.match(problemsFor(t, route({ subject })), [{ key: "routes[0].subject", message }], subject);
  }
  t.equal(firstRoute(t, route({ subject: "svc.users.{id}.get" })).subject, "svc.users.{id}.get");
});

t.test("a HEAD route clashes with a GET route on its path, whichever comes first", async (t) => {
  const get = route();
  const head = route({ name: "users.head", method: "HEAD", path: "/v1/users/:id" });
  t.match(problemsFor(t, get + head), [
    {
      route: "users.head",
      key: "routes[1].path",
      message:
        /clashes with GET \/v1\/users\/:id of the route at line \d+ \(users.get\) \(a GET route answers HEAD too\)/,
    },
  ]);
  t.match(problemsFor(t, head + get), [
    {
      route: "users.get",
      key: "routes[1].path",
      message: /clashes with HEAD \/v1\/users\/:id .*\(a GET route answers HEAD too\)/,
    },
  ]);
});

t.test("two routes clash on method + path whatever their param names", async (t) => {
  const routes = route() + route({ name: "users.get2", path: "/v1/users/:region" });
  const problems = problemsFor(t, routes);
  t.match(problems, [
    { route: "users.get2", key: "routes[1].path", message: /clashes with GET \/v1\/users\/:id/ },
  ]);
  t.equal(problems.length, 1);
  const otherMethod =
    route() + route({ name: "users.put", method: "PUT", path: "/v1/users/:region" });
  t.equal(loadConfig(writeTable(t, table(otherMethod))).routes.length, 2, "another method is fine");
});

t.test(
  "a path param must bind to a scalar, enum or scalar-like field of the request",
  async (t) => {
    const create = { request: "users.v1.CreateUserRequest", method: "POST", body: '"*"' };
    t.match(problemsFor(t, route({ ...create, path: "/v1/users/:user" })), [
      { key: "routes[0].path", message: /:user binds to "user", a users.v1.User message/ },
    ]);
    const list = { request: "users.v1.ListUsersRequest", response: "users.v1.ListUsersResponse" };
    t.match(problemsFor(t, route({ ...list, path: "/v1/users/:tiers" })), [
      { message: /:tiers binds to "tiers", which is repeated/ },
    ]);
    t.match(problemsFor(t, route({ path: "/v1/users/:ID" })), [
      { message: /:ID matches no field of users.v1.GetUserRequest \(did you mean "id"\?\)/ },
    ]);
    const fieldMask = firstRoute(t, route({ path: "/v1/users/:id/:fields" }));
    t.strictSame(fieldMask.pathParams, ["id", "fields"], "a FieldMask is filled from one string");
  },
);

t.test(
  "two path params bound to members of one oneof are refused: every request would set both",
  async (t) => {
    const pay = { request: "orders.v1.Order", subject: "svc.orders.pay" };
    const problems = problemsFor(t, route({ ...pay, path: "/v1/pay/:card_token/:invoice_number" }));
    t.match(problems, [
      {
        route: "users.get",
        key: "routes[0].path",
        message:
          /^:card_token and :invoice_number bind to members of the oneof "payment" of orders.v1.Order/,
      },
    ]);
    t.equal(problems.length, 1);
    const one = firstRoute(t, route({ ...pay, path: "/v1/pay/:card_token" }));
    t.strictSame(one.pathParams, ["card_token"], "one member of the oneof is fine");
  },
);

t.test(
  "body is * or a message, repeated or map field of the request, and never on GET",
  async (t) => {
    t.match(problemsFor(t, route({ body: '"*"' })), [
      { key: "routes[0].body", message: /a GET request has no body/ },
    ]);
    const post = { method: "POST", path: "/v1/users", request: "users.v1.CreateUserRequest" };
    t.match(problemsFor(t, route({ ...post, body: "region" })), [
      { key: "routes[0].body", message: /"region" is a string field/ },
    ]);
    t.match(problemsFor(t, route({ ...post, body: "usr" })), [
      { message: /"usr" is not a field of users.v1.CreateUserRequest \(did you mean "user"\?\)/ },
    ]);
    t.equal(firstRoute(t, route({ ...post, body: "user" })).body, "user");
    t.equal(firstRoute(t, route({ ...post, body: '"*"' })).body, "*");
    t.equal(
      firstRoute(t, route({ ...post, method: "DELETE", body: '"*"' })).body,
      "*",
      "DELETE may",
    );
  },
);

t.test(
  "names Object.prototype holds (constructor, toString) are no fields: a param or body naming one is refused",
  async (t) => {
    t.match(problemsFor(t, route({ path: "/v1/users/:id/:constructor" })), [
      {
        key: "routes[0].path",
        message: /:constructor matches no field of users.v1.GetUserRequest/,
      },
    ]);
    const post = { method: "POST", path: "/v1/users", request: "users.v1.CreateUserRequest" };
    t.match(problemsFor(t, route({ ...post, body: "toString" })), [
      { key: "routes[0].body", message: /"toString" is not a field of users.v1.CreateUserRequest/ },
    ]);
  },
);

t.test(
  "a well-known type as the request is refused where it is named, not at serve's start",
  async (t) => {
    t.match(problemsFor(t, route({ request: "google.protobuf.Struct", path: "/v1/users" })), [
      { key: "routes[0].request", message: /google.protobuf.Struct is a well-known type/ },
    ]);
  },
);

t.test(
  "a body field and a path param in one oneof are refused: every request with a body would set both",
  async (t) => {
    const proto = {
      "o.proto": `syntax = "proto3";
package o.v1;
message Payload { string note = 1; }
message Req { oneof target { string id = 1; Payload payload = 2; } }
message Res { string id = 1; }
`,
    };
    const yaml = table(
      route({
        method: "POST",
        path: "/o/:id",
        request: "o.v1.Req",
        response: "o.v1.Res",
        body: "payload",
      }),
    ).replace(/protos: \[.*\]/, "protos: [./p]");
    const dir = t.testdir({ "routes.yaml": yaml, p: proto });
    t.match(
      problemsOf(t, () => loadConfig(join(dir, "routes.yaml"))),
      [
        {
          key: "routes[0].path",
          message:
            /^:id and the body field "payload" bind to members of the oneof "target" of o.v1.Req/,
        },
      ],
    );
  },
);

t.test(
  "a request type holding a proto2 required field is refused: a request without it would be sent as 0",
  async (t) => {
    const proto = {
      "l.proto": `syntax = "proto2";
package l.v1;
message Inner { required int32 count = 1; }
message Req { required string id = 1; optional Inner inner = 2; }
message Res { required string id = 1; }
`,
    };
    const yaml = table(
      route({ path: "/l/:id", request: "l.v1.Req", response: "l.v1.Res" }),
    ).replace(/protos: \[.*\]/, "protos: [./p]");
    const dir = t.testdir({ "routes.yaml": yaml, p: proto });
    t.match(
      problemsOf(t, () => loadConfig(join(dir, "routes.yaml"))),
      [
        {
          key: "routes[0].request",
          message: /^l.v1.Req has a proto2 required field, inner.count: .*make it optional$/,
        },
      ],
    );
    t.equal(
      problemsOf(t, () => loadConfig(join(dir, "routes.yaml"))).length,
      1,
      "id, required but filled by the :id path param in every request, is fine",
    );
  },
);

t.test("unknown message types are refused with the closest name", async (t) => {
  t.match(problemsFor(t, route({ request: "users.v2.GetUserRequest", error: "users.v1.Eror" })), [
    {
      key: "routes[0].request",
      message: /no message type "users.v2.GetUserRequest".*did you mean "users.v1.GetUserRequest"/,
    },
    { key: "routes[0].error", message: /"users.v1.Eror".*did you mean "users.v1.Error"/ },
  ]);
  t.match(problemsFor(t, route({ response: "users.v1.Tier" })), [
    { key: "routes[0].response", message: /^"users.v1.Tier" is an enum: .* is a message$/ },
  ]);
});

t.test(
  "idempotent defaults to true for GET HEAD PUT DELETE OPTIONS, false for POST PATCH",
  async (t) => {
    const methods = ["GET", "HEAD", "PUT", "DELETE", "OPTIONS", "POST", "PATCH"];
    const routes = methods.map((m) =>
      // One path each: a GET route answers HEAD too, so the two may not share one.
      route({ name: m.toLowerCase(), method: m, path: `/v1/${m.toLowerCase()}/:id` }),
    );
    const loaded = loadConfig(writeTable(t, table(routes.join(""))));
    t.strictSame(Object.fromEntries(loaded.routes.map((r) => [r.method, r.idempotent])), {
      GET: true,
      HEAD: true,
      PUT: true,
      DELETE: true,
      OPTIONS: true,
      POST: false,
      PATCH: false,
    });
    t.equal(firstRoute(t, route({ method: "POST", idempotent: "true" })).idempotent, true);
  },
);

t.test("shadowing a non-idempotent route needs shadowWrites: true", async (t) => {
  const post = { method: "POST", cutover: "{ shadow: 5 }" };
  t.match(problemsFor(t, route(post)), [
    { key: "routes[0].cutover.shadow", message: /shadowWrites: true/ },
  ]);
  t.equal(firstRoute(t, route({ ...post, shadowWrites: "true" })).cutover.shadow, 5);
});

t.test("cutover percentages are 0-100 with at most two decimals", async (t) => {
  t.match(problemsFor(t, route({ cutover: "{ nats: 33.333, shadow: -1 }" })), [
    { key: "routes[0].cutover.nats", message: /at most two decimals, got 33.333/ },
    { key: "routes[0].cutover.shadow", message: /at least 0, got -1/ },
  ]);
  t.match(problemsFor(t, route({ cutover: '{ nats: "50" }' })), [
    { message: /must be a number, got "50"/ },
  ]);
  t.equal(firstRoute(t, route({ cutover: "{ nats: 33.33 }" })).cutover.nats, 33.33);
  t.equal(firstRoute(t, route({ cutover: "{ nats: 0.29 }" })).cutover.nats, 0.29);
  // Too small to show in hundredths, it used to pass and be read as 0.
  t.match(problemsFor(t, route({ cutover: "{ nats: 1e-9, shadow: 50.000001 }" })), [
    { key: "routes[0].cutover.nats", message: /at most two decimals, got 1e-9/ },
    { key: "routes[0].cutover.shadow", message: /at most two decimals, got 50.000001/ },
  ]);
});

t.test("sticky keys: header, cookie, query or ip; header names lower-cased", async (t) => {
  const sticky = (value: string) =>
    firstRoute(t, route({ cutover: `{ sticky: "${value}" }` })).cutover.sticky;
  t.strictSame(sticky("header:X-User-Id"), { kind: "header", name: "x-user-id" });
  t.strictSame(sticky("cookie:sid"), { kind: "cookie", name: "sid" });
  t.strictSame(sticky("query:user"), { kind: "query", name: "user" });
  t.strictSame(sticky("ip"), { kind: "ip" });
  t.match(problemsFor(t, route({ cutover: '{ sticky: "header:" }' })), [
    {
      key: "routes[0].cutover.sticky",
      message: /must be header:NAME, cookie:NAME, query:NAME or ip/,
    },
  ]);
});

t.test(
  "a route without a legacy upstream serves from NATS and can't split or shadow",
  async (t) => {
    t.equal(firstRoute(t, route({ legacy: "" })).cutover.nats, 100, "NATS-only: 100 by default");
    t.equal(firstRoute(t, route()).cutover.nats, 0, "with legacy: starts at 0");
    t.match(problemsFor(t, route({ legacy: "", cutover: "{ nats: 50, shadow: 10 }" })), [
      { key: "routes[0].cutover.nats", message: /no legacy upstream/ },
      { key: "routes[0].cutover.shadow", message: /needs a legacy upstream/ },
    ]);
  },
);

t.test("legacy is a name from legacy: or an absolute http(s) URL", async (t) => {
  t.equal(
    firstRoute(t, route({ legacy: "http://other:9000/api/" })).legacy,
    "http://other:9000/api",
  );
  t.match(problemsFor(t, route({ legacy: "user" })), [
    {
      key: "routes[0].legacy",
      message: /"user" is neither a name.*did you mean "users".*known: users/,
    },
  ]);
  t.match(problemsFor(t, route({ legacy: "ftp://x" })), [
    { message: /must use http:\/\/ or https:\/\// },
  ]);
  t.match(problemsFor(t, route({ legacy: "http://x/?a=1" })), [
    { message: /cannot carry a query/ },
  ]);
});

t.test(
  "headers are lower-cased and de-duplicated; invalid and turnout-* names refused",
  async (t) => {
    t.strictSame(firstRoute(t, route({ headers: "[X-User-Id, x-user-id, Accept]" })).headers, [
      "x-user-id",
      "accept",
    ]);
    t.match(problemsFor(t, route({ headers: '["x y", Turnout-Token]' })), [
      { key: "routes[0].headers[0]", message: /"x y" is not a valid HTTP header name/ },
      { key: "routes[0].headers[1]", message: /"turnout-token" is set by the gateway/ },
    ]);
  },
);

t.test(
  "headers the gateway sets on NATS requests (x-request-id, traceparent, tracestate) and nats-* are refused",
  async (t) => {
    const headers = "[X-Request-Id, traceparent, TraceState, Nats-Msg-Id, x-user-id]";
    const problems = problemsFor(t, route({ headers }));
    t.match(problems, [
      {
        key: "routes[0].headers[0]",
        message: /"x-request-id" is set by the gateway on every NATS/,
      },
      { key: "routes[0].headers[1]", message: /"traceparent" is set by the gateway/ },
      { key: "routes[0].headers[2]", message: /"tracestate" is set by the gateway/ },
      { key: "routes[0].headers[3]", message: /"nats-msg-id": Nats-\* headers steer NATS/ },
    ]);
    t.equal(problems.length, 4, "x-user-id is fine");
  },
);

t.test("compare.ignore entries are $-rooted JSON paths", async (t) => {
  const ignore = '["$.updatedAt", "$.items[0].id", "$.items[*].etag"]';
  t.strictSame(firstRoute(t, route({ compare: `{ ignore: ${ignore} }` })).compare.ignore, [
    "$.updatedAt",
    "$.items[0].id",
    "$.items[*].etag",
  ]);
  t.match(problemsFor(t, route({ compare: "{ ignore: [updatedAt, $] }" })), [
    { key: "routes[0].compare.ignore[0]", message: /must be a JSON path/ },
    { key: "routes[0].compare.ignore[1]", message: /must be a JSON path/ },
  ]);
});

t.test("rateLimit needs max; per defaults to 1m and key to ip", async (t) => {
  t.strictSame(firstRoute(t, route({ rateLimit: "{ max: 10 }" })).rateLimit, {
    max: 10,
    perMs: 60_000,
    key: "ip",
  });
  t.strictSame(
    firstRoute(t, route({ rateLimit: '{ max: 5, per: 1s, key: "header:X-Key" }' })).rateLimit,
    {
      max: 5,
      perMs: 1000,
      key: "header:x-key",
    },
  );
  t.match(problemsFor(t, route({ rateLimit: "{ per: 1s, key: user }" })), [
    { key: "routes[0].rateLimit.max", message: /is required/ },
    { key: "routes[0].rateLimit.key", message: /must be ip or header:NAME/ },
  ]);
});

t.test(
  "type names must be fully qualified, even where protobufjs would resolve a partial one",
  async (t) => {
    t.match(problemsFor(t, route({ request: "v1.GetUserRequest" })), [
      {
        key: "routes[0].request",
        message: /must be the fully qualified name: users.v1.GetUserRequest/,
      },
    ]);
    t.equal(
      firstRoute(t, route({ request: ".users.v1.GetUserRequest" })).request,
      "users.v1.GetUserRequest",
    );
  },
);

t.test(
  "type names must be fully qualified, even where protobufjs would resolve a partial one",
  async (t) => {
    t.match(problemsFor(t, route({ request: "v1.GetUserRequest" })), [
      {
        key: "routes[0].request",
        message: /must be the fully qualified name: users.v1.GetUserRequest/,
      },
    ]);
    t.equal(
      firstRoute(t, route({ request: ".users.v1.GetUserRequest" })).request,
      "users.v1.GetUserRequest",
    );
  },
);

t.test("required route keys, methods, modes and names are checked", async (t) => {
  t.match(problemsFor(t, route({ subject: "", response: "" })), [
    { key: "routes[0].subject", message: "is required" },
    { key: "routes[0].response", message: "is required" },
  ]);
  t.match(problemsFor(t, route({ method: "get", mode: "pub" })), [
    { key: "routes[0].method", message: /one of GET, HEAD.*did you mean "GET"/ },
    { key: "routes[0].mode", message: /one of request, publish/ },
  ]);
  t.match(problemsFor(t, route({ name: '"users get"' })), [
    { key: "routes[0].name", route: "routes[0]", message: /NATS KV key/ },
  ]);
  t.match(problemsFor(t, route({ name: "_unmatched" })), [
    {
      key: "routes[0].name",
      message: /"_unmatched" is reserved: it labels the requests that match no route/,
    },
  ]);
});

t.test("resolveFieldPath follows dotted names through single message fields only", async (t) => {
  const root = loadProtos([EXAMPLE_PROTOS]);
  const list = root.lookupType("users.v1.ListUsersRequest");
  const city = resolveFieldPath(list, "near.city");
  t.equal("name" in city ? city.name : undefined, "city");
  t.match(resolveFieldPath(list, "near.cty"), {
    problem: 'matches no field of users.v1.Address (did you mean "city"?)',
  });
  t.match(resolveFieldPath(list, "tiers.x"), { problem: /"tiers", which is not a single message/ });
});

t.test(
  'a path with a "." or ".." segment is refused: clients resolve it away, so no request could reach the route',
  async (t) => {
    for (const [path, segment] of [
      ["/v1/./users/:id", "."],
      ["/v1/users/:id/..", ".."],
    ] as const) {
      t.match(
        problemsFor(t, route({ path })),
        [
          {
            key: "routes[0].path",
            message: `segment "${segment}": clients and proxies resolve "." and ".." segments away`,
          },
        ],
        path,
      );
    }
    t.strictSame(
      firstRoute(t, route({ path: "/v1/users.../:id/.well-known" })).pathParams,
      ["id"],
      "dots inside a segment are plain characters",
    );
  },
);

t.test(
  "a subject in NATS's own namespaces ($JS, $KV, $SYS, _INBOX), the gateway's own (turnout.stats, turnout.dlq) or led by a {param} is refused",
  async (t) => {
    const cases: Array<[string, RegExp]> = [
      ["$JS.API.STREAM.DELETE.x", /^"\$JS" subjects belong to NATS \(\$JS\.API drives JetStream/],
      ["$KV.turnout_cutover.users.get", /^"\$KV" subjects belong to NATS/],
      ["$SYS.REQ.SERVER.PING", /^"\$SYS" subjects belong to NATS/],
      ["_INBOX.x", /^_INBOX subjects carry the replies to other requests/],
      [STATS_SUBJECT, /^"turnout" subjects are the gateway's own \(turnout\.stats/],
      [`${DLQ_SUBJECT_PREFIX}users.get`, /^"turnout" subjects are the gateway's own/],
      ["{region}.users.get", /^the first token cannot be a \{param\}: a client could fill it/],
    ];
    const path = "/v1/regions/:region/users/:id";
    for (const [subject, message] of cases) {
      const problems = problemsFor(t, route({ path, subject: `"${subject}"` }));
      t.match(problems, [{ route: "users.get", key: "routes[0].subject", message }], subject);
      t.equal(problems.length, 1, `${subject}: one problem`);
    }
    const fine = firstRoute(t, route({ path, subject: "svc.$x._INBOX.turnout.{region}" }));
    t.equal(fine.subject, "svc.$x._INBOX.turnout.{region}", "only the first token is reserved");
  },
);

t.test(
  "hop-by-hop and framing headers (connection, transfer-encoding, host, content-length...) are refused: they describe the connection, not the request",
  async (t) => {
    const names = [
      "connection",
      "keep-alive",
      "proxy-connection",
      "transfer-encoding",
      "te",
      "trailer",
      "upgrade",
      "host",
      "content-length",
    ];
    const headers = `[${names.map((n) => n.toUpperCase()).join(", ")}, x-user-id]`;
    const problems = problemsFor(t, route({ headers }));
    t.match(
      problems,
      names.map((name, i) => ({
        key: `routes[0].headers[${i}]`,
        message: `"${name}" describes the HTTP connection or the message's framing, not the request`,
      })),
    );
    t.equal(problems.length, names.length, "x-user-id is fine");
  },
);
