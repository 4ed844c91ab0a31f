/**
 * Legacy forwards follow the route's retry policy like the NATS path: a
 * timeout before the answer's head is retried on an idempotent route only, and
 * a refused connection (it reached no one) always.
 */
import type { ServerResponse } from "node:http";
import t from "tap";

import { downPort, startLegacyServer } from "../helpers/legacy-server.js";
import { startStack, writeRoutes } from "../helpers/stack.js";

/** Leaves the first request of each method unanswered (it times out), answers the rest. */
const legacy = await startLegacyServer((request, res) => {
  const seenOfMethod = legacy.seen.filter((r) => r.method === request.method).length;
  if (seenOfMethod === 1) return stalled.push(res);
  res.writeHead(request.method === "POST" ? 201 : 200, { "content-type": "application/json" });
  res.end(JSON.stringify({ id: "o-1", status: "STATUS_UNSPECIFIED" }));
});
const stalled: ServerResponse[] = [];
t.teardown(async () => {
  for (const res of stalled) res.destroy();
  await legacy.close();
});
const refusedPort = await downPort(); // nothing listens there

const route = (name: string, method: string, path: string, upstream: string) => `  - name: ${name}
    method: ${method}
    path: ${path}
    subject: svc.orders.${name}
    request: orders.v1.GetOrderRequest
    response: orders.v1.Order
    legacy: ${upstream}
    cutover: { nats: 0, shadow: 0 }
    timeout: 300ms
    retry: { attempts: 2, backoff: 20ms }
`;
const stack = await startStack(
  t,
  writeRoutes(
    route("get", "GET", "/v1/orders/:id", legacy.url) +
      route("create", "POST", "/v1/orders", legacy.url) +
      route("refused", "GET", "/v1/refused/:id", `http://127.0.0.1:${refusedPort}`),
  ),
);
const url = (path: string) => `${stack.gateway.url}${path}`;

t.test("a GET whose legacy answer timed out is retried and served", async (t) => {
  const res = await fetch(url("/v1/orders/o-1"));
  t.equal(res.status, 200);
  t.same(await res.json(), { id: "o-1", status: "STATUS_UNSPECIFIED" });
  t.equal(legacy.seen.filter((r) => r.method === "GET").length, 2, "sent twice");
});

t.test("a POST whose legacy answer timed out is not retried: 504", async (t) => {
  const res = await fetch(url("/v1/orders"), {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ id: "o-2" }),
  });
  t.equal(res.status, 504);
  t.equal(((await res.json()) as { code: string }).code, "TURNOUT_ERR_UPSTREAM_TIMEOUT");
  t.equal(legacy.seen.filter((r) => r.method === "POST").length, 1, "sent once: it may have run");
});

t.test("a refused legacy connection is retried as often as the route says, then 503", async (t) => {
  const res = await fetch(url("/v1/refused/o-3"));
  t.equal(res.status, 503);
  t.equal(((await res.json()) as { code: string }).code, "TURNOUT_ERR_UPSTREAM_REFUSED");
  const metrics = await metricsText();
  t.match(metrics, /turnout_requests_total\{route="refused",backend="gateway",code="503"\} 1\n/);
  t.match(metrics, /turnout_retries_total\{route="refused",backend="legacy"\} 2\n/, "2 retries");
});

t.test("the retries of the other routes are counted too", async (t) => {
  const metrics = await metricsText();
  t.match(metrics, /turnout_retries_total\{route="get",backend="legacy"\} 1\n/, "the GET: one");
  t.match(
    metrics,
    /turnout_retries_total\{route="create",backend="legacy"\} 0\n/,
    "the POST: none",
  );
});

async function metricsText(): Promise<string> {
  return (await fetch(`${stack.gateway.adminUrl}/metrics`)).text();
}
