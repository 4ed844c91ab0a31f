import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import type protobuf from "protobufjs";
import t from "tap";
import { runContract } from "../../src/cli/contract.js";
import { loadConfigAndProtos } from "../../src/config/load.js";
import { freePort, startNatsServer } from "../../src/devtools/nats-server.js";
import { ServiceError, startWorker } from "../../src/worker/index.js";
import { captured } from "../helpers/cli-output.js";
import { ordersGetRoute, usersCreateRoute, usersGetRoute } from "../helpers/route-yaml.js";
import { writeRoutes } from "../helpers/stack.js";
import { tempDir } from "../helpers/temp-dir.js";

// Legacy upstreams that refuse connections: a sample served by legacy (a
// fallback) would fail with UPSTREAM_REFUSED, so passing proves NATS served it.
const routes = (ignore: string) =>
  usersGetRoute({
    error: "users.v1.Error",
    legacy: "http://127.0.0.1:1",
    cutover: "{ nats: 0, shadow: 0 }",
    compare: `{ ignore: [${ignore}] }`,
    timeout: "500ms",
  }) +
  usersCreateRoute({ legacy: "http://127.0.0.1:1" }) +
  ordersGetRoute({ legacy: "http://127.0.0.1:1", timeout: "300ms" });
/** The legacy services' JSON style, as recorded. */
const DEFAULTS = `defaults:
  json: { names: proto, int64: string, enums: name, emitDefaults: true }
  breaker: { errorPercent: 50, volume: 2, resetAfter: 10s }
`;
const routesFile = writeRoutes(routes('"$.created_at"'), DEFAULTS);
const noIgnoreFile = writeRoutes(routes(""), DEFAULTS);

const server = await startNatsServer();
t.teardown(() => server.stop());
const nc = await connect({ servers: server.url });
t.teardown(() => nc.close());
const { root } = loadConfigAndProtos(routesFile, { natsUrl: server.url });

/** What the worker answers differently from legacy, per test. */
const drift = { lowercaseEmail: false };
startUsersWorkers(root);
await nc.flush();

function startUsersWorkers(root: protobuf.Root): void {
  const get = startWorker({
    nc,
    root,
    subject: "svc.users.*.get",
    requestType: "users.v1.GetUserRequest",
    responseType: "users.v1.User",
    errorType: "users.v1.Error",
    handle(req: { id: string; region: string }) {
      if (req.id === "broken") {
        throw new ServiceError(503, "database down", { error: "unavailable", message: "db down" });
      }
      if (req.id === "missing") {
        throw new ServiceError(404, "user not found", {
          error: "not_found",
          message: "no user missing",
        });
      }
      const email = `${req.id === "u-1" ? "Grace" : "Alan"}@example.com`;
      return root.lookupType("users.v1.User").fromObject({
        id: req.id,
        region: req.region,
        email: drift.lowercaseEmail ? email.toLowerCase() : email,
        tier: "TIER_PRO",
        balance_cents: "9007199254740993",
        // Generated per answer: never what was recorded; only compare.ignore lets it pass.
        created_at: { seconds: Math.floor(Date.now() / 1000) },
      });
    },
  });
  const create = startWorker({
    nc,
    root,
    subject: "svc.users.*.create",
    requestType: "users.v1.CreateUserRequest",
    responseType: "users.v1.User",
    handle(req: { user?: protobuf.Message }, ctx) {
      ctx.httpStatus = 201;
      return req.user ?? {};
    },
  });
  t.teardown(async () => {
    await get.stop();
    await create.stop();
  });
}

/** A recorded users.get answer, in legacy's style unless overridden. */
function recordedUser(id: string, email: string, extra: Record<string, unknown> = {}) {
  return {
    id,
    region: "eu",
    display_name: "",
    email,
    tier: "TIER_PRO",
    balance_cents: "9007199254740993",
    tags: [],
    created_at: "2020-01-01T00:00:00Z",
    verified: false,
    labels: {},
    ...extra,
  };
}

const GRACE = {
  method: "GET",
  path: "/v1/regions/eu/users/u-1",
  headers: { "x-user-id": "u-1" },
  status: 200,
  response: recordedUser("u-1", "Grace@example.com"),
};
const MISSING = {
  method: "GET",
  path: "/v1/regions/eu/users/missing",
  status: 404,
  response: { error: "not_found", message: "no user missing" },
};
/** Recorded by a service with another style: camel names, enum number, bare int64, no defaults. */
const ALAN_OTHER_STYLE = {
  method: "GET",
  path: "/v1/regions/eu/users/u-2",
  status: 200,
  response: {
    id: "u-2",
    region: "eu",
    email: "Alan@example.com",
    tier: 2,
    balanceCents: "<int64>",
    createdAt: "2020-01-01T00:00:00Z",
  },
};
const CREATE = {
  method: "POST",
  path: "/v1/regions/eu/users",
  body: { id: "u-9", email: "new@example.com" },
  status: 201,
  response: recordedUser("u-9", "new@example.com", {
    region: "",
    tier: "TIER_UNSPECIFIED",
    balance_cents: "0",
    created_at: undefined, // the route ignores nothing, and creating sets no time
  }),
};
const ORDER = { method: "GET", path: "/v1/orders/o-1", status: 200, response: { id: "o-1" } };

/** One sample a line after a comment; the int64 placeholder becomes a bare number past 2^53. */
function samplesFile(...samples: object[]): string {
  const lines = samples.map((s) => JSON.stringify(s).replace('"<int64>"', "9007199254740993"));
  const file = join(tempDir("turnout-contract"), "samples.jsonl");
  writeFileSync(file, `# recorded from users-legacy\n${lines.join("\n")}\n`);
  return file;
}

/** Runs `turnout contract ...` in-process with captured output. */
async function cli(argv: string[], config = routesFile, natsUrl = server.url) {
  return captured((out) =>
    runContract([...argv, "--config", config], out, {
      TURNOUT_NATS_URL: natsUrl,
    }),
  );
}

t.test("samples that the worker answers like legacy all pass, exit 0", async (t) => {
  const file = samplesFile(GRACE, MISSING, ALAN_OTHER_STYLE, CREATE);
  const run = await cli(["--samples", file]);
  t.equal(run.code, 0, run.stdout + run.stderr);
  t.equal(
    run.stdout,
    [
      "ok   line 2 GET /v1/regions/eu/users/u-1",
      "ok   line 3 GET /v1/regions/eu/users/missing",
      "ok   line 4 GET /v1/regions/eu/users/u-2",
      "ok   line 5 POST /v1/regions/eu/users",
      "4 samples: 4 ok, 0 failed",
      "",
    ].join("\n"),
  );
});

t.test(
  "a field the worker prints differently fails its line, naming the field; exit 1",
  async (t) => {
    drift.lowercaseEmail = true;
    t.teardown(() => {
      drift.lowercaseEmail = false;
    });
    const run = await cli(["--samples", samplesFile(MISSING, GRACE)]);
    t.equal(run.code, 1);
    t.match(run.stdout, "ok   line 2 GET /v1/regions/eu/users/missing\n");
    t.match(
      run.stdout,
      'FAIL line 3 GET /v1/regions/eu/users/u-1\n     $.email changed: recorded "Grace@example.com", got "grace@example.com"\n',
    );
    t.match(run.stdout, /2 samples: 1 ok, 1 failed\n$/);
  },
);

t.test(
  "a route with no worker fails with the gateway's NO_RESPONDERS code, not a fallback",
  async (t) => {
    const run = await cli(["--samples", samplesFile(ORDER, GRACE)]);
    t.equal(run.code, 1);
    t.match(
      run.stdout,
      /^FAIL line 2 GET \/v1\/orders\/o-1\n {5}\$status changed: recorded 200, got 503 TURNOUT_ERR_NO_RESPONDERS \(.+\)\nok {3}line 3 /,
    );
  },
);

t.test("a sample that matches no route fails on its own; the others still run", async (t) => {
  const nowhere = { method: "GET", path: "/v1/nowhere?x=1", status: 200 };
  const wrongMethod = { method: "DELETE", path: "/v1/regions/eu/users/u-1", status: 204 };
  const run = await cli(["--samples", samplesFile(nowhere, wrongMethod, GRACE)]);
  t.equal(run.code, 1);
  t.match(
    run.stdout,
    /FAIL line 2 GET \/v1\/nowhere\?x=1\n {5}no route: .*404 TURNOUT_ERR_NOT_FOUND/,
  );
  t.match(run.stdout, /FAIL line 3 DELETE \S+\n {5}no route: .*405 TURNOUT_ERR_METHOD_NOT_ALLOWED/);
  t.match(run.stdout, "ok   line 4 GET /v1/regions/eu/users/u-1\n3 samples: 1 ok, 2 failed\n");
});

t.test(
  "a sample the router refuses before any route ran is compared as it is, and said so, not called routeless",
  async (t) => {
    const badEscape = "/v1/regions/eu/users/%E0%A4%A";
    const answered = { method: "GET", path: badEscape, status: 200, response: { id: "x" } };
    const refusedToo = { method: "GET", path: badEscape, status: 400 };
    const run = await cli(["--samples", samplesFile(answered, refusedToo, GRACE)]);
    t.equal(run.code, 1);
    t.match(
      run.stdout,
      /FAIL line 2 GET \S+\n {5}refused before any route ran: the gateway answered 400 TURNOUT_ERR_BAD_PARAM \(.+\)\n {5}\$status changed: recorded 200, got 400/,
    );
    t.notMatch(run.stdout, /no route/);
    t.match(
      run.stdout,
      /FAIL line 3 GET \S+\n {5}refused before any route ran: [^\n]+\n {5}\$body extra: recorded nothing/,
      "the recorded 400 matches on status; only the body it did not record differs",
    );
  },
);

t.test(
  "a HEAD the router refuses before any route ran is judged by its status, not called routeless",
  async (t) => {
    const badEscape = "/v1/regions/eu/users/%E0%A4%A";
    const refused = { method: "HEAD", path: badEscape, status: 400 };
    const nowhere = { method: "HEAD", path: "/v1/nowhere", status: 200 };
    const run = await cli(["--samples", samplesFile(refused, nowhere)]);
    t.match(run.stdout, `ok   line 2 HEAD ${badEscape}\n`, "the same refusal as recorded passes");
    t.match(run.stdout, /FAIL line 3 HEAD \/v1\/nowhere\n {5}no route: .*answered 404/);
  },
);

t.test(
  "a status change on a route with an error type shows the worker's error body: it says why",
  async (t) => {
    const run = await cli(["--samples", samplesFile({ ...MISSING, status: 200, response: {} })]);
    t.equal(run.code, 1);
    t.match(
      run.stdout,
      '$status changed: recorded 200, got 404 with body {"error":"not_found","message":"no user missing"}\n',
    );
    const json = await cli(["--samples", samplesFile({ ...MISSING, status: 200 }), "--json"]);
    t.match(json.stdout, /"body": "\{\\"error\\":\\"not_found\\"/);
  },
);

t.test(
  "in a plain-JSON comparison a big number and an object print as JSON, never like the string beside them",
  async (t) => {
    // A legacy-only `links` leaves the proto's normalising out: plain JSON.
    const response = {
      ...recordedUser("u-1", "Grace@example.com"),
      balance_cents: "<int64>",
      links: { self: "/u" },
    };
    const file = samplesFile({ ...GRACE, response });
    const run = await cli(["--samples", file]);
    t.equal(run.code, 1);
    t.match(
      run.stdout,
      /\$\.balance_cents changed: recorded 9007199254740993, got "9007199254740993"/,
    );
    t.match(run.stdout, /\$\.links missing: recorded \{"self":"\/u"\}, got nothing/);
    const json = await cli(["--samples", file, "--json"]);
    t.match(json.stdout, /"recorded": 9007199254740993,\s+"got": "9007199254740993"/);
    t.match(json.stdout, /"recorded": \{\s+"self": "\/u"\s+\}/);
  },
);

t.test("compare.ignore is what lets a generated field differ", async (t) => {
  const file = samplesFile(GRACE);
  t.equal((await cli(["--samples", file])).code, 0, "created_at ignored: ok");
  const strict = await cli(["--samples", file], noIgnoreFile);
  t.equal(strict.code, 1, "the same sample fails without the ignore path");
  t.match(strict.stdout, /\$\.createdAt changed: recorded "2020-01-01T00:00:00Z", got "20\d\d-/);
});

t.test("each sample is judged alone: worker 5xx answers never open the breaker", async (t) => {
  // The table's breaker opens after 2 failures; in the gateway the third would be BREAKER_OPEN.
  const broken = {
    method: "GET",
    path: "/v1/regions/eu/users/broken",
    status: 503,
    response: { error: "unavailable", message: "db down" },
  };
  const run = await cli(["--samples", samplesFile(broken, broken, broken, broken)]);
  t.equal(run.code, 0, run.stdout);
  t.match(run.stdout, "4 samples: 4 ok, 0 failed");
});

t.test("--json prints one report object with every result", async (t) => {
  const run = await cli(["--samples", samplesFile(GRACE, ORDER), "--json"]);
  t.equal(run.code, 1);
  const report = JSON.parse(run.stdout);
  t.match(report, { samples: 2, ok: 1, failed: 1 });
  t.match(report.results[0], { line: 2, route: "users.get", result: "ok", status: 200 });
  t.match(report.results[1], {
    line: 3,
    route: "orders.get",
    result: "fail",
    recordedStatus: 200,
    status: 503,
    code: "TURNOUT_ERR_NO_RESPONDERS",
    diffs: [{ path: "$status", kind: "changed", recorded: 200, got: 503 }],
  });
});

t.test("--concurrency replays in parallel and reports in file order", async (t) => {
  const file = samplesFile(GRACE, ORDER, MISSING, ALAN_OTHER_STYLE, CREATE, ORDER);
  const serial = await cli(["--samples", file]);
  const parallel = await cli(["--samples", file, "--concurrency", "4"]);
  t.equal(parallel.code, 1);
  t.equal(parallel.stdout, serial.stdout);
  t.match(parallel.stdout, "6 samples: 4 ok, 2 failed");
});

t.test("NATS unreachable: exit 1 naming the servers, nothing reported as passed", async (t) => {
  const port = await freePort();
  const run = await cli(["--samples", samplesFile(GRACE)], routesFile, `nats://127.0.0.1:${port}`);
  t.equal(run.code, 1);
  t.match(run.stderr, `turnout contract: cannot connect to NATS nats://127.0.0.1:${port}:`);
  t.equal(run.stdout, "");
});

t.test("a bad command line, samples file or route table exits 2 and replays nothing", async (t) => {
  const missingFlag = await cli([]);
  t.equal(missingFlag.code, 2);
  t.match(
    missingFlag.stderr,
    /turnout contract: --samples FILE\.jsonl is required\nusage: turnout contract/,
  );

  const unreadable = await cli(["--samples", "/nonexistent/samples.jsonl"]);
  t.equal(unreadable.code, 2);
  t.match(unreadable.stderr, "turnout contract: cannot read /nonexistent/samples.jsonl: ENOENT");

  const concurrency = await cli(["--samples", samplesFile(GRACE), "--concurrency", "0"]);
  t.equal(concurrency.code, 2);
  t.match(concurrency.stderr, "--concurrency must be a whole number from 1 to 64");

  const unknown = await cli(["--samples", samplesFile(GRACE), "--sample-file", "x"]);
  t.equal(unknown.code, 2);
  t.match(unknown.stderr, "unknown flag --sample-file");

  const badLines = join(tempDir("turnout-contract"), "bad.jsonl");
  writeFileSync(badLines, `${JSON.stringify(GRACE)}\n{"method":"GET","status":200}\n`);
  drift.lowercaseEmail = true; // line 1 would fail if it were replayed
  t.teardown(() => {
    drift.lowercaseEmail = false;
  });
  const bad = await cli(["--samples", badLines]);
  t.equal(bad.code, 2);
  t.match(bad.stderr, `${badLines}:2: path: missing`);
  t.match(bad.stderr, "1 problem(s)");
  t.equal(bad.stdout, "", "nothing replayed");

  const badConfig = writeRoutes(
    "  - name: users.get\n    method: GET\n    path: /x\n    subjct: a\n",
  );
  const config = await cli(["--samples", samplesFile(GRACE)], badConfig);
  t.equal(config.code, 2);
  t.match(config.stderr, /routes\.yaml:\d+:\d+ route users\.get routes\[0\]\.subjct: unknown key/);
});
