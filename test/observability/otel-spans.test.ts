/**
 * OpenTelemetry spans end to end: a real gateway, nats-server, worker and
 * legacy upstream, exporting over OTLP/HTTP to a plain node:http receiver that
 * decodes the JSON it is sent. The gateway's span must be the parent named in
 * the `traceparent` its worker and legacy upstream get.
 */
import { request } from "node:http";
import { connect } from "@nats-io/transport-node";
import type protobuf from "protobufjs";
import t from "tap";
import { loadConfigAndProtos } from "../../src/config/load.js";
import { startNatsServer } from "../../src/devtools/nats-server.js";
import { type OtelOptions, otelOptionsFromEnv } from "../../src/observability/otel.js";
import { parseTraceparent } from "../../src/observability/trace.js";
import type { RunningGateway } from "../../src/server/start.js";
import { startWorker } from "../../src/worker/index.js";
import { type SeenByLegacy, sendJson, startLegacyServer } from "../helpers/legacy-server.js";
import { usersGetRoute, usersLegacyRoute } from "../helpers/route-yaml.js";
import { startLoopbackGateway, writeRoutes } from "../helpers/stack.js";

const CLIENT_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_PARENT_ID = "00f067aa0ba902b7";
const CLIENT_TRACE = `00-${CLIENT_TRACE_ID}-${CLIENT_PARENT_ID}-01`;

const ROUTES =
  usersGetRoute() +
  usersLegacyRoute() +
  `  - name: orders.slow
    method: GET
    path: /v1/slow/:id
    subject: svc.orders.slow
    request: orders.v1.GetOrderRequest
    response: orders.v1.Order
    timeout: 200ms
  - name: orders.nobody
    method: GET
    path: /v1/nobody/:id
    subject: svc.orders.nobody
    request: orders.v1.GetOrderRequest
    response: orders.v1.Order
  - name: orders.hold
    method: POST
    path: /v1/hold
    subject: svc.orders.slow
    request: orders.v1.CreateOrderRequest
    response: orders.v1.Order
    body: order
    timeout: 1s
`;

// ---- the real parts: OTLP receiver, legacy upstream, nats-server, workers ----

const receiver = await startLegacyServer((_request, res) => sendJson(res, 200, {}));
t.teardown(() => receiver.close());
const legacy = await startLegacyServer((request, res) => {
  const id = /\/users\/([^/?]+)/.exec(request.url)?.[1] ?? "";
  sendJson(res, 200, { id, region: "eu", display_name: "Ada" });
});
t.teardown(() => legacy.close());
const server = await startNatsServer({ jetstream: false });
t.teardown(() => server.stop());
const { config, root } = loadConfigAndProtos(
  writeRoutes(ROUTES, `legacy:\n  users: ${legacy.url}\n`),
  { natsUrl: server.url },
);
const nc = await connect({ servers: server.url });
t.teardown(() => nc.close());

/** The `traceparent` each worker call carried, by request id. */
const workerSeen = new Map<string, string | undefined>();
const userType = root.lookupType("users.v1.User");
const worker = startWorker({
  nc,
  root,
  subject: "svc.users.*.get",
  requestType: "users.v1.GetUserRequest",
  responseType: "users.v1.User",
  handle(req: protobuf.Message & { id: string; region: string }, ctx) {
    workerSeen.set(ctx.requestId ?? "", ctx.headers?.get("traceparent"));
    return userType.fromObject({ id: req.id, region: req.region, display_name: "Ada" });
  },
});
t.teardown(() => worker.stop());
// Takes the slow route's requests and never answers: a 504.
nc.subscribe("svc.orders.slow", { callback: () => {} });
await nc.flush();

async function gateway(otel: OtelOptions | false): Promise<RunningGateway> {
  const running = await startLoopbackGateway({ config, root, otel });
  await running.connected;
  await running.cutoverStore.settled;
  return running;
}

async function get(
  running: RunningGateway,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; requestId: string }> {
  const res = await fetch(`${running.url}${path}`, { headers });
  await res.text();
  return { status: res.status, requestId: res.headers.get("x-request-id") ?? "" };
}

// ---- OTLP/JSON decoding ----

interface AnyValue {
  stringValue?: string;
  intValue?: number | string;
  boolValue?: boolean;
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  traceState?: string;
  name: string;
  kind: number;
  attributes: Array<{ key: string; value: AnyValue }>;
  status?: { code?: number };
}
interface OtlpExport {
  resourceSpans: Array<{
    resource: { attributes: Array<{ key: string; value: AnyValue }> };
    scopeSpans: Array<{ spans: OtlpSpan[] }>;
  }>;
}
const SPAN_KIND_SERVER = 2;
const STATUS_ERROR = 2;

function exported(posts: readonly SeenByLegacy[]): OtlpExport[] {
  return posts.map((post) => {
    if (post.method !== "POST" || post.url !== "/v1/traces") {
      throw new Error(`unexpected ${post.method} ${post.url} to the receiver`);
    }
    if (!String(post.headers["content-type"]).startsWith("application/json")) {
      throw new Error(`not OTLP/JSON: ${post.headers["content-type"]}`);
    }
    return JSON.parse(post.body) as OtlpExport;
  });
}

function spansOf(posts: readonly SeenByLegacy[]): OtlpSpan[] {
  return exported(posts).flatMap((e) =>
    e.resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans)),
  );
}

/** Attributes as plain values (OTLP/JSON may send ints as strings). */
function attributesOf(span: OtlpSpan): Record<string, string | number | boolean | undefined> {
  const out: Record<string, string | number | boolean | undefined> = {};
  for (const { key, value } of span.attributes) {
    out[key] =
      value.stringValue ??
      (value.intValue === undefined ? value.boolValue : Number(value.intValue));
  }
  return out;
}

// ---- the tests ----

t.test("env rules: which OTEL_* variables turn spans on", async (t) => {
  t.equal(otelOptionsFromEnv({}), undefined, "off by default");
  t.same(otelOptionsFromEnv({ OTEL_TRACES_EXPORTER: "otlp" }), {});
  t.same(otelOptionsFromEnv({ OTEL_TRACES_EXPORTER: "console, OTLP" }), {});
  t.same(otelOptionsFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318" }), {});
  t.same(otelOptionsFromEnv({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://c:4318/v1/traces" }), {});
  t.same(
    otelOptionsFromEnv({ OTEL_TRACES_EXPORTER: "otlp", OTEL_SERVICE_NAME: " edge-gateway " }),
    { serviceName: "edge-gateway" },
  );
  t.equal(otelOptionsFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "" }), undefined, "empty is unset");
  t.equal(otelOptionsFromEnv({ OTEL_SERVICE_NAME: "x" }), undefined, "a name alone is not enough");
  t.equal(
    otelOptionsFromEnv({ OTEL_TRACES_EXPORTER: "none", OTEL_EXPORTER_OTLP_ENDPOINT: "http://c" }),
    undefined,
    "an explicit exporter list without otlp wins over an endpoint",
  );
  t.equal(otelOptionsFromEnv({ OTEL_TRACES_EXPORTER: "zipkin" }), undefined);
  for (const disabled of ["true", "TRUE", " true "]) {
    t.equal(
      otelOptionsFromEnv({ OTEL_SDK_DISABLED: disabled, OTEL_TRACES_EXPORTER: "otlp" }),
      undefined,
      `OTEL_SDK_DISABLED=${disabled}`,
    );
  }
  t.same(otelOptionsFromEnv({ OTEL_SDK_DISABLED: "false", OTEL_TRACES_EXPORTER: "otlp" }), {});
});

t.test("on: one server span per request, parent of the worker's and legacy's", async (t) => {
  receiver.seen.length = 0;
  const running = await gateway({ url: `${receiver.url}/v1/traces`, serviceName: "turnout-test" });
  let closed = false;
  t.teardown(() => (closed ? undefined : running.close()));

  const toNats = await get(running, "/v1/regions/eu/users/u-1", {
    traceparent: CLIENT_TRACE,
    tracestate: "vendor=1",
  });
  const started = await get(running, "/v1/regions/eu/users/u-2");
  const toLegacy = await get(running, "/v1/old/eu/users/u-3", {
    traceparent: CLIENT_TRACE,
    tracestate: "vendor=2",
  });
  const unsampled = await get(running, "/v1/regions/eu/users/u-4", {
    traceparent: `00-${CLIENT_TRACE_ID}-${CLIENT_PARENT_ID}-00`,
  });
  const timedOut = await get(running, "/v1/slow/o-1");
  const noWorker = await get(running, "/v1/nobody/o-2");
  const notFound = await get(running, "/nowhere/u-5");
  const refused = await get(running, "/v1/regions/eu/users/%zz", { traceparent: CLIENT_TRACE });
  t.same(
    [toNats, started, toLegacy, unsampled, timedOut, noWorker, notFound, refused].map(
      (r) => r.status,
    ),
    [200, 200, 200, 200, 504, 503, 404, 400],
  );
  await running.close();
  closed = true;

  const spans = spansOf(receiver.seen);
  const resource = exported(receiver.seen)[0]?.resourceSpans[0]?.resource;
  t.equal(
    resource?.attributes.find((a) => a.key === "service.name")?.value.stringValue,
    "turnout-test",
  );
  t.equal(spans.length, 7, "one span per sampled request, the unsampled one not exported");
  const bySpanId = (traceparent: string | undefined) => {
    const parsed = parseTraceparent(traceparent);
    return spans.filter((s) => s.spanId === parsed?.parentId);
  };

  // The client's trace, continued: the worker's parent is the gateway span.
  const natsTrace = workerSeen.get(toNats.requestId);
  t.match(natsTrace, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  t.equal(parseTraceparent(natsTrace)?.traceId, CLIENT_TRACE_ID);
  t.not(parseTraceparent(natsTrace)?.parentId, CLIENT_PARENT_ID, "a new parent id: the span's");
  const [natsSpan, ...extra] = bySpanId(natsTrace);
  t.equal(extra.length, 0);
  t.ok(natsSpan, "exactly one exported span is the worker's parent");
  t.equal(
    spans.filter((s) => s.traceId === CLIENT_TRACE_ID).length,
    3,
    "nats and legacy calls, and the refused one",
  );
  t.match(natsSpan, {
    traceId: CLIENT_TRACE_ID,
    parentSpanId: CLIENT_PARENT_ID,
    name: "GET /v1/regions/{region}/users/{id}",
    kind: SPAN_KIND_SERVER,
  });
  t.notOk(natsSpan?.status?.code, "no error status");
  t.equal(natsSpan?.traceState, "vendor=1", "the client's tracestate is the span's");
  t.same(attributesOf(natsSpan as OtlpSpan), {
    "http.request.method": "GET",
    "http.route": "/v1/regions/{region}/users/{id}",
    "turnout.route": "users.get",
    "http.response.status_code": 200,
    "turnout.backend": "nats",
    "messaging.system": "nats",
    "messaging.destination.template": "svc.users.{region}.get",
    "messaging.destination.name": "svc.users.eu.get",
  });

  // No client traceparent: the span starts the trace; the worker hangs under it.
  const startedTrace = parseTraceparent(workerSeen.get(started.requestId));
  const [rootSpan] = bySpanId(workerSeen.get(started.requestId));
  t.equal(rootSpan?.traceId, startedTrace?.traceId);
  t.notOk(rootSpan?.parentSpanId, "a root span");

  // Legacy gets the same rewritten traceparent; the client's tracestate is passed on.
  const legacySeen = legacy.seen.find((s) => s.url === "/v1/old/eu/users/u-3");
  const legacyTrace = legacySeen?.headers.traceparent as string | undefined;
  const [legacySpan] = bySpanId(legacyTrace);
  t.match(legacySpan, {
    traceId: CLIENT_TRACE_ID,
    parentSpanId: CLIENT_PARENT_ID,
    name: "GET /v1/old/{region}/users/{id}",
  });
  t.match(attributesOf(legacySpan as OtlpSpan), {
    "turnout.route": "users.legacy",
    "turnout.backend": "legacy",
    "http.response.status_code": 200,
  });
  t.notOk("messaging.destination.name" in attributesOf(legacySpan as OtlpSpan));
  t.equal(legacySeen?.headers.tracestate, "vendor=2");

  // Not sampled by the client: not exported, still a new parent id, flags kept.
  const unsampledTrace = parseTraceparent(workerSeen.get(unsampled.requestId));
  t.equal(unsampledTrace?.traceId, CLIENT_TRACE_ID);
  t.equal(unsampledTrace?.flags, "00");
  t.not(unsampledTrace?.parentId, CLIENT_PARENT_ID);

  // 5xx: error status.
  const slow = spans.find((s) => s.name === "GET /v1/slow/{id}");
  t.equal(slow?.status?.code, STATUS_ERROR, "504 is an error");
  t.match(attributesOf(slow as OtlpSpan), {
    "http.response.status_code": 504,
    "turnout.backend": "nats",
    "error.type": "504",
    "messaging.destination.name": "svc.orders.slow",
  });
  const nobody = spans.find((s) => s.name === "GET /v1/nobody/{id}");
  t.equal(nobody?.status?.code, STATUS_ERROR, "503 is an error");
  t.match(attributesOf(nobody as OtlpSpan), { "http.response.status_code": 503 });

  // No route: named by the method alone, no route attributes, not an error.
  const unmatched = spans.find((s) => s.name === "GET");
  t.notOk(unmatched?.status?.code);
  t.same(attributesOf(unmatched as OtlpSpan), {
    "http.request.method": "GET",
    "http.response.status_code": 404,
    "turnout.backend": "gateway",
  });

  // Refused by the router before any hook ran (a bad percent-escape): its span all the same.
  const router = spans.filter((s) => attributesOf(s)["http.response.status_code"] === 400);
  t.equal(router.length, 1, "the router's refusal has a span");
  t.match(router[0], {
    traceId: CLIENT_TRACE_ID,
    parentSpanId: CLIENT_PARENT_ID,
    name: "GET /v1/regions/{region}/users/{id}",
  });
  t.match(attributesOf(router[0] as OtlpSpan), {
    "turnout.route": "users.get",
    "turnout.backend": "gateway",
  });
});

t.test(
  "a client that leaves after sending its whole body still gets its span, ended as 499",
  async (t) => {
    receiver.seen.length = 0;
    const running = await gateway({
      url: `${receiver.url}/v1/traces`,
      serviceName: "turnout-test",
    });
    const req = request(`${running.url}/v1/hold`, {
      method: "POST",
      headers: { "content-type": "application/json", traceparent: CLIENT_TRACE },
    });
    req.on("error", () => {});
    req.end('{"id":"o-9"}');
    // The worker holds it (svc.orders.slow never answers); the client gives up.
    await new Promise((resolve) => setTimeout(resolve, 300));
    req.destroy();
    const gone = () => running.metrics.requests.cell("orders.hold", "nats", "499").value === 1;
    // Recorded once the NATS call ends (its 1 s timeout), the client long gone.
    for (let i = 0; i < 200 && !gone(); i++) await new Promise((r) => setTimeout(r, 20));
    t.ok(gone(), "recorded as 499");
    await running.close(); // flushes the spans
    const held = spansOf(receiver.seen).filter((span) => span.name === "POST /v1/hold");
    t.equal(held.length, 1, "one span");
    t.match(attributesOf(held[0] as OtlpSpan), { "http.response.status_code": 499 });
  },
);

t.test("off: nothing is exported and the client's traceparent passes unchanged", async (t) => {
  receiver.seen.length = 0;
  // The env rules with no OTEL_* variable: off.
  const running = await gateway(otelOptionsFromEnv({}) ?? false);
  let closed = false;
  t.teardown(() => (closed ? undefined : running.close()));
  const res = await get(running, "/v1/regions/eu/users/u-9", { traceparent: CLIENT_TRACE });
  t.equal(res.status, 200);
  t.equal(workerSeen.get(res.requestId), CLIENT_TRACE, "today's behaviour: unchanged");
  await running.close();
  closed = true;
  // Bounded wait for a POST that must never come (the batch delay is 5 s, the flush is on close).
  await new Promise((resolve) => setTimeout(resolve, 300));
  t.equal(receiver.seen.length, 0, "the receiver got nothing");
});
