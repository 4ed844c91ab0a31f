/**
 * A request NATS fails before any worker saw it falls back to legacy. When
 * legacy gives no answer either (refused, timed out), the request is kept as
 * a dead letter like any request that finally failed on NATS, its error the
 * NATS one, naming legacy's failure too; the client gets legacy's error. A
 * legacy answer, any status, served the request: no dead letter then. The
 * fallback is counted either way: the count is of NATS failures.
 */
import type protobuf from "protobufjs";
import t from "tap";
import { listDeadLetters } from "../../src/backends/nats/dead-letters.js";
import { downPort, sendJson, startLegacyServer } from "../helpers/legacy-server.js";
import { waitUntil } from "../helpers/serve-process.js";
import { startStack, writeRoutes } from "../helpers/stack.js";

const stalled = await startLegacyServer(() => {}); // never answers
t.teardown(() => stalled.close());
const failing = await startLegacyServer((_request, res) =>
  sendJson(res, 500, { error: "db down" }),
);
t.teardown(() => failing.close());
const refusedPort = await downPort();

/** No worker listens on any of these subjects: each request falls back to legacy. */
const route = (name: string, method: string, legacy: string) => `  - name: ${name}
    method: ${method}
    path: /v1/${name.replace(".", "/")}${method === "GET" ? "/:id" : ""}
    subject: svc.${name}
    request: orders.v1.${method === "GET" ? "GetOrderRequest" : "CreateOrderRequest"}
    response: orders.v1.Order
${method === "GET" ? "" : "    body: order\n"}    legacy: ${legacy}
    cutover: { nats: 100, shadow: 0 }
    timeout: 300ms
`;
const ROUTES =
  route("refused.get", "GET", `http://127.0.0.1:${refusedPort}`) +
  route("stalled.create", "POST", stalled.url) +
  route("failing.get", "GET", failing.url);
const stack = await startStack(t, writeRoutes(ROUTES), { jetstream: true });
const gw = stack.gateway;
await gw.deadLetters.ensureStream();

const deadLetters = (name: string) => gw.metrics.deadLetters.cell(name).value;
const fallbacks = (name: string) => gw.metrics.fallbacks.cell(name, "no_responders").value;

t.test(
  "a fallback that legacy refuses is answered with legacy's error and kept as a dead letter naming both failures",
  async (t) => {
    const res = await fetch(`${gw.url}/v1/refused/get/o-1`, {
      headers: { "x-request-id": "req-refused" },
    });
    t.equal(res.status, 503);
    t.match(await res.json(), { code: "TURNOUT_ERR_UPSTREAM_REFUSED" }, "legacy's error");
    t.equal(fallbacks("refused.get"), 1, "the NATS failure counted as a fallback");
    await waitUntil(() => deadLetters("refused.get") === 1, 5000);
    const [letter, ...others] = await listDeadLetters(stack.nc, { route: "refused.get" });
    t.same(others, []);
    t.match(letter, {
      requestId: "req-refused",
      subject: "svc.refused.get",
      errorCode: "TURNOUT_ERR_NO_RESPONDERS",
      error: /; the fallback to legacy failed too \(TURNOUT_ERR_UPSTREAM_REFUSED: /,
    });
  },
);

t.test(
  "a fallback that legacy does not answer in time is kept as a dead letter with its payload",
  async (t) => {
    const res = await fetch(`${gw.url}/v1/stalled/create`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-request-id": "req-stalled" },
      body: JSON.stringify({ id: "o-2" }),
    });
    t.equal(res.status, 504);
    t.match(await res.json(), { code: "TURNOUT_ERR_UPSTREAM_TIMEOUT" });
    t.equal(stalled.seen.length, 1, "legacy got the request");
    await waitUntil(() => deadLetters("stalled.create") === 1, 5000);
    const [letter] = await listDeadLetters(stack.nc, { route: "stalled.create" });
    t.match(letter, {
      requestId: "req-stalled",
      errorCode: "TURNOUT_ERR_NO_RESPONDERS",
      error: /the fallback to legacy failed too \(TURNOUT_ERR_UPSTREAM_TIMEOUT: /,
    });
    const type = stack.root.lookupType("orders.v1.CreateOrderRequest");
    const body = type.decode(Buffer.from(letter?.body ?? "", "base64")) as protobuf.Message & {
      order?: { id: string };
    };
    t.equal(body.order?.id, "o-2", "the request's payload, to replay");
  },
);

t.test("a fallback that legacy answers, even with a 500, leaves no dead letter", async (t) => {
  const res = await fetch(`${gw.url}/v1/failing/get/o-3`);
  t.equal(res.status, 500, "legacy's own answer");
  t.same(await res.json(), { error: "db down" });
  t.equal(fallbacks("failing.get"), 1);
  // A letter is stored within milliseconds here (the two above were).
  await new Promise((resolve) => setTimeout(resolve, 500));
  t.equal(deadLetters("failing.get"), 0);
  t.equal(gw.metrics.deadLettersLost.cell("failing.get", "failed").value, 0);
  t.same(await listDeadLetters(stack.nc, { route: "failing.get" }), []);
});
