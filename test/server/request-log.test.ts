/**
 * The request log line and trace propagation, on a real gateway: one JSON line
 * per request with what the worker saw, no secrets, and a valid `traceparent`
 * on every call to a worker or a legacy upstream.
 */
import Fastify from "fastify";
import type protobuf from "protobufjs";
import t from "tap";
import { LOG_REDACT } from "../../src/cli/serve.js";
import { resolveSettings } from "../../src/cli/settings.js";
import { parseTraceparent } from "../../src/observability/trace.js";
import { sendJson, startLegacyServer } from "../helpers/legacy-server.js";
import { infoLogLines } from "../helpers/log-lines.js";
import { usersGetRoute, usersLegacyRoute } from "../helpers/route-yaml.js";
import { usersGetWorker } from "../helpers/routes-and-workers.js";
import { startStack, writeRoutes } from "../helpers/stack.js";

const TOKEN = "admin-token-never-logged";
const BEARER = "Bearer client-secret-never-logged";
const CLIENT_TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

const legacy = await startLegacyServer((request, res) => {
  const id = /\/users\/([^/?]+)/.exec(request.url)?.[1] ?? "";
  sendJson(res, 200, { id, region: "eu", display_name: "Ada", email: "ada@example.com" });
});
t.teardown(() => legacy.close());

const ROUTES =
  usersGetRoute({ legacy: "users", cutover: "{ nats: 100, shadow: 0 }" }) +
  `  - name: users.mirrored
    method: GET
    path: /v1/mirrored/:region/users/:id
    subject: svc.users.{region}.get
    request: users.v1.GetUserRequest
    response: users.v1.User
    legacy: users
    cutover: { nats: 100, shadow: 100 }
` +
  usersLegacyRoute();

const { logger, lines } = infoLogLines();
const stack = await startStack(
  t,
  writeRoutes(ROUTES, `legacy:\n  users: ${legacy.url}\ndefaults:\n  json: { names: proto }\n`),
  { adminToken: TOKEN, logger },
);

interface SeenByWorker {
  requestId: string;
  traceparent: string | undefined;
}
const workerSeen: SeenByWorker[] = [];
const userType = stack.root.lookupType("users.v1.User");
const worker = usersGetWorker(
  stack.nc,
  stack.root,
  (req: protobuf.Message & { id: string; region: string }, ctx) => {
    workerSeen.push({
      requestId: ctx.requestId ?? "",
      traceparent: ctx.headers?.get("traceparent"),
    });
    return userType.fromObject({ id: req.id, region: req.region, display_name: "Ada" });
  },
);
await stack.nc.flush();
t.teardown(() => worker.stop());

interface RequestLine {
  msg: string;
  level: number;
  requestId: string;
  route: string;
  backend: string;
  status: number;
  durationMs: number;
  method: string;
  path: string;
  traceId?: string;
}

function requestLines(): RequestLine[] {
  return lines.map((line) => JSON.parse(line) as RequestLine).filter((l) => l.msg === "request");
}

/** The response is sent before onResponse runs: wait for the line(s). */
async function waitFor<T>(what: string, get: () => T | undefined): Promise<T> {
  for (let i = 0; i < 200; i++) {
    const value = get();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const url = (path: string) => `${stack.gateway.url}${path}`;

t.test("one line per request, with the id the worker saw", async (t) => {
  const before = requestLines().length;
  const res = await fetch(url("/v1/regions/eu/users/u-1?verbose=1&token=x"), {
    headers: { authorization: BEARER, "turnout-token": TOKEN, cookie: "session=cookie-secret" },
  });
  t.equal(res.status, 200);
  await res.text();
  const requestId = res.headers.get("x-request-id") ?? "";
  const seen = workerSeen.find((s) => s.requestId === requestId);
  t.ok(seen, "the worker saw the request id the client got");
  const mine = await waitFor("the log line", () => {
    const found = requestLines().filter((l) => l.requestId === requestId);
    return found.length > 0 ? found : undefined;
  });
  // Give a second line, if there were one, the time to show up.
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.equal(requestLines().filter((l) => l.requestId === requestId).length, 1, "exactly one line");
  t.equal(requestLines().length - before, 1, "and no other request line");
  const line = mine[0] as RequestLine;
  t.match(line, {
    msg: "request",
    level: 30,
    requestId,
    route: "users.get",
    backend: "nats",
    status: 200,
    method: "GET",
    path: "/v1/regions/eu/users/u-1",
  });
  t.type(line.durationMs, "number");
  t.ok(line.durationMs >= 0);
  t.equal(line.traceId, parseTraceparent(seen?.traceparent)?.traceId, "the trace the worker got");
});

t.test("legacy and gateway answers are logged with their backend", async (t) => {
  const viaLegacy = await fetch(url("/v1/old/eu/users/u-2"));
  t.equal(viaLegacy.status, 200);
  await viaLegacy.text();
  const notFound = await fetch(url("/nowhere?x=1"));
  t.equal(notFound.status, 404);
  await notFound.text();
  const legacyId = viaLegacy.headers.get("x-request-id");
  const gatewayId = notFound.headers.get("x-request-id");
  const legacyLine = await waitFor("legacy line", () =>
    requestLines().find((l) => l.requestId === legacyId),
  );
  t.match(legacyLine, { route: "users.legacy", backend: "legacy", status: 200 });
  const gatewayLine = await waitFor("gateway line", () =>
    requestLines().find((l) => l.requestId === gatewayId),
  );
  t.match(gatewayLine, { backend: "gateway", status: 404, path: "/nowhere" });
});

t.test("secrets never reach the log", async (t) => {
  const forced = await fetch(url("/v1/regions/eu/users/u-3"), {
    headers: {
      authorization: BEARER,
      "turnout-token": TOKEN,
      "turnout-backend": "legacy",
      cookie: "session=cookie-secret",
    },
  });
  t.equal(forced.status, 200);
  await forced.text();
  const id = forced.headers.get("x-request-id");
  const line = await waitFor("forced line", () => requestLines().find((l) => l.requestId === id));
  t.equal(line.backend, "legacy", "the token was read (forced side) but not logged");
  // A line that did carry the headers or NATS secrets (same logger options) is redacted.
  const probe = Fastify({ logger });
  t.teardown(() => probe.close());
  const headers = { authorization: BEARER, "turnout-token": TOKEN, cookie: "c=cookie-secret" };
  probe.log.error({ req: { headers }, headers }, "probe");
  probe.log.error({ nats: { auth: { token: TOKEN, pass: TOKEN, nkeySeed: TOKEN } } }, "probe");
  const all = lines.join("\n");
  t.equal(lines.filter((l) => l.includes('"probe"')).length, 2, "the probe lines were written");
  t.ok(all.includes("[Redacted]"));
  for (const secret of ["client-secret-never-logged", TOKEN, "cookie-secret"]) {
    t.notOk(all.includes(secret), `${secret} is not in the log`);
  }
  t.ok(LOG_REDACT.includes("req.headers.authorization"));
});

t.test("a started traceparent reaches the worker and legacy", async (t) => {
  const toNats = await fetch(url("/v1/regions/eu/users/u-4"));
  await toNats.text();
  const natsSeen = workerSeen.find((s) => s.requestId === toNats.headers.get("x-request-id"));
  t.match(natsSeen?.traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  t.not(parseTraceparent(natsSeen?.traceparent), undefined);

  const toLegacy = await fetch(url("/v1/old/eu/users/u-5"));
  await toLegacy.text();
  const legacySeen = legacy.seen.find((s) => s.url === "/v1/old/eu/users/u-5");
  t.match(legacySeen?.headers.traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  t.not(parseTraceparent(legacySeen?.headers.traceparent), undefined);
  t.not(
    parseTraceparent(legacySeen?.headers.traceparent)?.traceId,
    parseTraceparent(natsSeen?.traceparent)?.traceId,
    "two requests, two traces",
  );
});

t.test("one request served by NATS and mirrored to legacy carries one trace", async (t) => {
  const res = await fetch(url("/v1/mirrored/eu/users/u-6"));
  await res.text();
  const natsSeen = workerSeen.find((s) => s.requestId === res.headers.get("x-request-id"));
  const legacySeen = await waitFor("the mirror", () =>
    legacy.seen.find((s) => s.url === "/v1/mirrored/eu/users/u-6"),
  );
  t.not(parseTraceparent(natsSeen?.traceparent), undefined);
  t.equal(legacySeen.headers.traceparent, natsSeen?.traceparent, "the same traceparent on both");
});

t.test("a client's traceparent is passed unchanged", async (t) => {
  const headers = { traceparent: CLIENT_TRACE, tracestate: "vendor=1" };
  const toNats = await fetch(url("/v1/regions/eu/users/u-7"), { headers });
  await toNats.text();
  const natsSeen = workerSeen.find((s) => s.requestId === toNats.headers.get("x-request-id"));
  t.equal(natsSeen?.traceparent, CLIENT_TRACE);

  const toLegacy = await fetch(url("/v1/old/eu/users/u-8"), { headers });
  await toLegacy.text();
  const legacySeen = legacy.seen.find((s) => s.url === "/v1/old/eu/users/u-8");
  t.equal(legacySeen?.headers.traceparent, CLIENT_TRACE);
  t.equal(legacySeen?.headers.tracestate, "vendor=1");
  const line = await waitFor("line", () =>
    requestLines().find((l) => l.requestId === toLegacy.headers.get("x-request-id")),
  );
  t.equal(line.traceId, "4bf92f3577b34da6a3ce929d0e0e4736");
});

t.test("--log-level beats TURNOUT_LOG_LEVEL; info by default; a bad one is refused", async (t) => {
  const env = { TURNOUT_LOG_LEVEL: "warn" };
  t.equal(resolveSettings([], {}).logLevel, "info");
  t.equal(resolveSettings([], env).logLevel, "warn");
  t.equal(resolveSettings(["--log-level", "debug"], env).logLevel, "debug");
  t.throws(() => resolveSettings(["--log-level", "loud"], {}), /log-level/);
});
