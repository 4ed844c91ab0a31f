import t from "tap";
import { loadConfig, loadConfigAndProtos } from "../../src/config/load.js";
import { EXAMPLE_PROTOS, EXAMPLE_ROUTES, problemsOf } from "./fixtures/helpers.js";

const PROTO_JSON = { names: "proto", int64: "string", enums: "name", emitDefaults: true };

t.test(
  "the example routes.yaml loads with units, defaults and legacy names resolved",
  async (t) => {
    const config = loadConfig(EXAMPLE_ROUTES);
    t.equal(config.file, EXAMPLE_ROUTES);
    t.strictSame(config.protos, [EXAMPLE_PROTOS]);
    t.strictSame(config.nats, {
      servers: ["nats://127.0.0.1:4222"],
      name: "turnout-example",
      tls: undefined,
      auth: undefined,
    });
    t.strictSame(config.legacy, {
      users: "http://127.0.0.1:8081",
      orders: "http://127.0.0.1:8082",
    });
    t.strictSame(
      config.routes.map((r) => r.name),
      ["users.get", "users.list", "users.create", "orders.get", "orders.create"],
    );

    const usersGet = config.routes[0]!;
    t.strictSame(usersGet, {
      name: "users.get",
      method: "GET",
      path: "/v1/regions/:region/users/:id",
      pathParams: ["region", "id"],
      subject: "svc.users.{region}.get",
      request: "users.v1.GetUserRequest",
      response: "users.v1.User",
      error: "users.v1.Error",
      body: undefined,
      legacy: "http://127.0.0.1:8081",
      cutover: { nats: 50, shadow: 100, sticky: { kind: "header", name: "x-user-id" } },
      mode: "request",
      idempotent: true,
      shadowWrites: false,
      timeoutMs: 500,
      retry: { attempts: 0, backoffMs: 50 },
      json: PROTO_JSON,
      breaker: { errorPercent: 50, volume: 20, resetAfterMs: 10_000 },
      bodyLimitBytes: 1024 * 1024,
      rateLimit: undefined,
      compare: { ignore: [] },
      headers: ["x-user-id", "accept-language"],
    });
  },
);

t.test(
  "example routes without their own values take the defaults; their own values win",
  async (t) => {
    const [, usersList, usersCreate, ordersGet] = loadConfig(EXAMPLE_ROUTES).routes;
    t.equal(usersList!.timeoutMs, 2000, "defaults.timeout: 2s");
    t.strictSame(usersList!.json, PROTO_JSON, "defaults.json");
    t.strictSame(usersList!.cutover.sticky, { kind: "random" }, "no sticky key: random");
    t.equal(usersCreate!.idempotent, false, "POST is not idempotent by default");
    t.equal(usersCreate!.body, "user");
    t.strictSame(
      ordersGet!.json,
      { names: "camel", int64: "string", enums: "name", emitDefaults: false },
      "the route's json wins over defaults.json",
    );
    t.equal(ordersGet!.legacy, "http://127.0.0.1:8082");
  },
);

t.test("the loaded config is frozen all the way down", async (t) => {
  const config = loadConfig(EXAMPLE_ROUTES);
  t.ok(Object.isFrozen(config));
  t.ok(Object.isFrozen(config.nats.servers));
  t.ok(Object.isFrozen(config.routes));
  t.ok(Object.isFrozen(config.routes[0]!.cutover.sticky));
  t.ok(Object.isFrozen(config.routes[0]!.headers));
  t.throws(() => {
    (config.routes[0] as { timeoutMs: number }).timeoutMs = 1;
  }, TypeError);
});

t.test(
  "loadConfigAndProtos hands back the compiled protos and counts their message types",
  async (t) => {
    const loaded = loadConfigAndProtos(EXAMPLE_ROUTES);
    t.ok(loaded.root.lookupType("users.v1.User"));
    // users.proto defines 8 messages and orders.proto 5; google/protobuf imports don't count.
    t.equal(loaded.messageTypes, 13);
  },
);

t.test("--nats-url replaces the file's servers, split on commas", async (t) => {
  const config = loadConfig(EXAMPLE_ROUTES, { natsUrl: "nats://a:4222, nats://b:4443" });
  t.strictSame(config.nats.servers, ["nats://a:4222", "nats://b:4443"]);
});

t.test("a bad --nats-url is a problem located at the flag", async (t) => {
  const problems = problemsOf(t, () => loadConfig(EXAMPLE_ROUTES, { natsUrl: "http://a:80," }));
  t.strictSame(problems, [
    {
      location: "--nats-url",
      key: "nats.servers",
      message: '"http://a:80" must use nats:// or tls://, not http://',
    },
  ]);
});

t.test("a missing file is one problem naming the file", async (t) => {
  const problems = problemsOf(t, () => loadConfig("/nonexistent/routes.yaml"));
  t.equal(problems.length, 1);
  t.match(problems[0], { location: "/nonexistent/routes.yaml", message: /cannot read the file/ });
});
