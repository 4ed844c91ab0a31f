import { setTimeout as sleep } from "node:timers/promises";
import t from "tap";
import { ServiceError, startWorker, type Worker } from "../../src/worker/index.js";
import { downPort, sendJson, startLegacyServer } from "../helpers/legacy-server.js";
import { infoLogLines } from "../helpers/log-lines.js";
import { waitUntil } from "../helpers/serve-process.js";
import { startStack, writeRoutes } from "../helpers/stack.js";

const ORDER = `    request: orders.v1.GetOrderRequest
    response: orders.v1.Order
    error: orders.v1.Error
`;
const BREAKER = "    breaker: { errorPercent: 50, volume: 5, resetAfter: 500ms }\n";
const ROUTES = `  - name: brk.get
    method: GET
    path: /v1/brk/:id
    subject: svc.brk.get
${ORDER}${BREAKER}  - name: brk.create
    method: POST
    path: /v1/brk
    subject: svc.brk.create
    request: orders.v1.CreateOrderRequest
    response: orders.v1.Order
    error: orders.v1.Error
    body: order
${BREAKER}  - name: four.get
    method: GET
    path: /v1/four/:id
    subject: svc.four.get
${ORDER}${BREAKER}  - name: late.get
    method: GET
    path: /v1/late/:id
    subject: svc.late.get
${ORDER}    retry: { attempts: 5, backoff: 100ms }
  - name: slow.get
    method: GET
    path: /v1/slow/:id
    subject: svc.slow.get
${ORDER}    timeout: 200ms
    retry: { attempts: 2, backoff: 10ms }
  - name: slow.create
    method: POST
    path: /v1/slow
    subject: svc.slow.create
    request: orders.v1.CreateOrderRequest
    response: orders.v1.Order
    body: order
    timeout: 200ms
    retry: { attempts: 2, backoff: 10ms }
`;

const legacy = await startLegacyServer((_request, res) =>
  sendJson(res, 200, { id: "from-legacy" }),
);
t.teardown(() => legacy.close());
/** GET /v1/NAME/:id on svc.NAME.get, with the breaker above and a legacy upstream. */
const legacyRoute = (name: string, legacyUrl: string, cutover: string) => `  - name: ${name}.get
    method: GET
    path: /v1/${name}/:id
    subject: svc.${name}.get
${ORDER}${BREAKER}    legacy: ${legacyUrl}
    cutover: ${cutover}
`;
const FALLBACK_ROUTE = legacyRoute("fb", legacy.url, "{ nats: 100, shadow: 0 }");
const upstreamPort = await downPort(); // nothing listens there until the test starts a server
const DOWN_ROUTE = legacyRoute(
  "down",
  `http://127.0.0.1:${upstreamPort}`,
  "{ nats: 0, shadow: 0 }",
);
// The shadow side of a NATS-served route: down until the test starts it.
const mirrorPort = await downPort();
const SHADOWED_ROUTE = legacyRoute(
  "shadowed",
  `http://127.0.0.1:${mirrorPort}`,
  "{ nats: 100, shadow: 100 }",
);

const { logger, lines: logLines } = infoLogLines();
const stack = await startStack(
  t,
  writeRoutes(ROUTES + FALLBACK_ROUTE + DOWN_ROUTE + SHADOWED_ROUTE),
  { logger },
);
/** The breaker lines logged for a route, as `backend state`. */
const breakerLog = (route: string) =>
  logLines
    .map((line) => JSON.parse(line) as { route?: string; backend?: string; breaker?: string })
    .filter((line) => line.route === route && line.breaker !== undefined)
    .map((line) => `${line.backend} ${line.breaker}`);
const workers: Worker[] = [];
t.teardown(async () => {
  for (const worker of workers) await worker.stop();
});
const url = (path: string) => `${stack.gateway.url}${path}`;

function orderWorker(subject: string, handle: (id: string) => Promise<object> | object): void {
  workers.push(
    startWorker({
      nc: stack.nc,
      root: stack.root,
      subject,
      requestType: subject.endsWith("create")
        ? "orders.v1.CreateOrderRequest"
        : "orders.v1.GetOrderRequest",
      responseType: "orders.v1.Order",
      errorType: "orders.v1.Error",
      handle: (req: { id?: string; order?: { id: string } }) => handle(req.id ?? req.order!.id),
      onError: () => {},
    }),
  );
}

async function breakerState(route: string, backend = "nats"): Promise<string | undefined> {
  const text = await (await fetch(`${stack.gateway.adminUrl}/metrics`)).text();
  const line = new RegExp(
    `^turnout_breaker_state\\{route="${route}",backend="${backend}"\\} (\\d)$`,
    "m",
  );
  return line.exec(text)?.[1];
}

t.test("worker 500s open the breaker, which then fails fast and closes on recovery", async (t) => {
  let healthy = false;
  orderWorker("svc.brk.get", (id) => {
    if (!healthy) throw new ServiceError(500, "db down", { code: "internal", detail: "db down" });
    return { id };
  });
  let published = 0;
  const spy = stack.nc.subscribe("svc.brk.>", {
    callback: () => {
      published++;
    },
  });
  t.teardown(() => spy.unsubscribe());
  await stack.nc.flush();
  t.equal(await breakerState("brk.get"), "0", "closed at start");

  for (let i = 0; i < 5; i++) {
    const res = await fetch(url(`/v1/brk/o-${i}`));
    t.equal(res.status, 500, "the worker's 500 is passed on while the breaker counts it");
    await res.arrayBuffer();
  }
  await stack.nc.flush();
  t.equal(published, 5);

  const start = performance.now();
  const res = await fetch(url("/v1/brk/o-open"));
  const elapsed = performance.now() - start;
  t.equal(res.status, 503);
  t.match(await res.json(), { code: "TURNOUT_ERR_BREAKER_OPEN", route: "brk.get" });
  t.ok(elapsed < 100, `answered at once (${elapsed.toFixed(1)} ms)`);
  await stack.nc.flush();
  await sleep(50);
  t.equal(published, 5, "nothing was sent to NATS while open");
  t.equal(await breakerState("brk.get"), "2", "the gauge shows open");

  healthy = true;
  await sleep(600);
  t.equal(await breakerState("brk.get"), "1", "half-open after resetAfter");
  const healed = await fetch(url("/v1/brk/o-back"));
  t.equal(healed.status, 200);
  t.same(await healed.json(), { id: "o-back" });
  t.equal(await breakerState("brk.get"), "0", "closed again after one success");
  t.equal(published, 6);
  t.strictSame(breakerLog("brk.get"), ["nats open", "nats halfOpen", "nats closed"]);
  const opened = logLines.find((line) =>
    line.includes('"route":"brk.get","backend":"nats","breaker":"open"'),
  );
  t.match(opened, /"level":40.*circuit breaker open: over 50% of at least 5 requests failed/);
});

t.test(
  "with the breaker open, bad input is still the client's 400 naming the field, and no dead letter",
  async (t) => {
    orderWorker("svc.brk.create", () => {
      throw new ServiceError(500, "db down", { code: "internal", detail: "db down" });
    });
    await stack.nc.flush();
    const post = (body: string) =>
      fetch(url("/v1/brk"), {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
      });
    for (let i = 0; i < 5; i++) await (await post(`{"id":"o-${i}"}`)).arrayBuffer();
    const open = await post('{"id":"o-open"}');
    t.equal(open.status, 503);
    t.match(await open.json(), { code: "TURNOUT_ERR_BREAKER_OPEN" });

    const badField = await post('{"id":5}');
    t.equal(badField.status, 400);
    t.match(await badField.json(), { code: "TURNOUT_ERR_BAD_FIELD", field: "$.id" });
    const badJson = await post("{not json");
    t.equal(badJson.status, 400);
    t.match(await badJson.json(), { code: "TURNOUT_ERR_BAD_JSON" });
    const metrics = await (await fetch(`${stack.gateway.adminUrl}/metrics`)).text();
    t.match(
      metrics,
      /turnout_dead_letters_lost_total\{route="brk.create",reason="failed"\} 0\n/,
      "bad input is no dead letter that failed to store",
    );
  },
);

t.test("worker 4xx answers never open the breaker", async (t) => {
  let calls = 0;
  orderWorker("svc.four.get", () => {
    calls++;
    throw new ServiceError(404, "no such order", { code: "not_found", detail: "none" });
  });
  await stack.nc.flush();
  for (let i = 0; i < 10; i++) {
    const res = await fetch(url(`/v1/four/o-${i}`));
    t.equal(res.status, 404);
    await res.arrayBuffer();
  }
  t.equal(calls, 10, "every request reached the worker");
  t.equal(await breakerState("four.get"), "0");
});

t.test("no responders is retried until a worker appears", async (t) => {
  let calls = 0;
  const pending = fetch(url("/v1/late/o-1"));
  await sleep(150);
  orderWorker("svc.late.get", (id) => {
    calls++;
    return { id };
  });
  await stack.nc.flush();
  const res = await pending;
  t.equal(res.status, 200, "answered by the worker that started after the request");
  t.same(await res.json(), { id: "o-1" });
  t.equal(calls, 1, "the failed attempts never reached a worker");
  const metrics = await (await fetch(`${stack.gateway.adminUrl}/metrics`)).text();
  const retries = /turnout_retries_total\{route="late.get",backend="nats"\} (\d+)/.exec(metrics);
  t.ok(Number(retries?.[1]) >= 1, `the retries are counted (${retries?.[0]})`);
});

t.test("a timeout is retried on a GET but not on a POST", async (t) => {
  const seen = new Map<string, number>();
  const slowFirst = async (id: string) => {
    const n = (seen.get(id) ?? 0) + 1;
    seen.set(id, n);
    if (n === 1) await sleep(350);
    return { id };
  };
  orderWorker("svc.slow.get", slowFirst);
  orderWorker("svc.slow.create", slowFirst);
  await stack.nc.flush();

  const get = await fetch(url("/v1/slow/g-1"));
  t.equal(get.status, 200, "the GET's second attempt answered");
  t.same(await get.json(), { id: "g-1" });
  t.equal(seen.get("g-1"), 2);

  const post = await fetch(url("/v1/slow"), {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ id: "p-1" }),
  });
  t.equal(post.status, 504);
  t.match(await post.json(), { code: "TURNOUT_ERR_TIMEOUT" });
  await sleep(300);
  t.equal(seen.get("p-1"), 1, "the POST was sent once only");
  const metrics = await (await fetch(`${stack.gateway.adminUrl}/metrics`)).text();
  t.match(metrics, /turnout_retries_total\{route="slow.get",backend="nats"\} 1\n/);
  t.match(metrics, /turnout_retries_total\{route="slow.create",backend="nats"\} 0\n/);
});

t.test(
  "an open NATS breaker sends the route's requests to legacy, counted as a fallback",
  async (t) => {
    orderWorker("svc.fb.get", () => {
      throw new ServiceError(500, "db down", { code: "internal", detail: "db down" });
    });
    await stack.nc.flush();
    for (let i = 0; i < 5; i++) {
      t.equal(
        (await fetch(url(`/v1/fb/f-${i}`))).status,
        500,
        "the worker's 500 reaches the client",
      );
    }
    const before = legacy.seen.length;
    const res = await fetch(url("/v1/fb/f-9"));
    t.equal(res.status, 200, "legacy answered while the breaker is open");
    t.same(await res.json(), { id: "from-legacy" });
    t.equal(legacy.seen.length, before + 1);
    const metrics = await (await fetch(`${stack.gateway.adminUrl}/metrics`)).text();
    t.match(metrics, /turnout_fallbacks_total\{route="fb.get",reason="breaker_open"\} 1/);
  },
);

t.test(
  "a legacy upstream that refuses connections opens its breaker; the half-open probe finds it back",
  async (t) => {
    for (let i = 0; i < 5; i++) {
      const res = await fetch(url(`/v1/down/o-${i}`));
      t.equal(res.status, 503);
      t.match(await res.json(), { code: "TURNOUT_ERR_UPSTREAM_REFUSED" });
    }
    t.equal(await breakerState("down.get", "legacy"), "2", "open after volume refusals");

    const upstream = await startLegacyServer(
      (_request, res) => sendJson(res, 200, { id: "up" }),
      upstreamPort,
    );
    t.teardown(() => upstream.close());
    const open = await fetch(url("/v1/down/o-open"));
    t.equal(open.status, 503);
    t.match(await open.json(), { code: "TURNOUT_ERR_BREAKER_OPEN", route: "down.get" });
    t.equal(upstream.seen.length, 0, "no connection is tried while open");

    await sleep(600);
    const back = await fetch(url("/v1/down/o-back"));
    t.equal(back.status, 200);
    t.same(await back.json(), { id: "up" });
    t.equal(upstream.seen.length, 1, "one probe, which succeeded");
    t.equal(await breakerState("down.get", "legacy"), "0", "closed again");
  },
);

t.test(
  "mirrors to a shadow side that is down stop once their own breaker opens, and resume after a probe",
  async (t) => {
    orderWorker("svc.shadowed.get", (id) => ({ id }));
    await stack.nc.flush(); // the worker's subscription is on the server
    const served = async (id: string) => {
      const res = await fetch(url(`/v1/shadowed/${id}`));
      t.equal(res.status, 200, "NATS serves whatever the mirrors do");
      t.same(await res.json(), { id });
      await waitUntil(() => stack.gateway.mirrors.inFlight === 0, 5000);
    };
    const metrics = async () => (await fetch(`${stack.gateway.adminUrl}/metrics`)).text();
    const metric = async (pattern: RegExp) => pattern.exec(await metrics())?.[1];

    for (let i = 0; i < 5; i++) await served(`o-${i}`);
    const shadowLines = (await metrics()).match(/^turnout_shadow.*shadowed\.get.* [1-9]\d*$/gm);
    t.same(
      shadowLines,
      ['turnout_shadow_total{route="shadowed.get",result="error"} 5'],
      "five refused mirrors, nothing else (every other count at 0)",
    );
    t.equal(
      await breakerState("shadowed.get", "legacy"),
      "0",
      "the primary's breaker is not moved",
    );

    const upstream = await startLegacyServer(
      (request, res) => sendJson(res, 200, { id: request.url.split("/").pop() }),
      mirrorPort,
    );
    t.teardown(() => upstream.close());
    for (let i = 0; i < 10; i++) await served(`o-open-${i}`);
    t.equal(upstream.seen.length, 0, "no mirror is tried while the mirror breaker is open");
    t.equal(
      await metric(
        /^turnout_shadow_skipped_total\{route="shadowed.get",reason="breaker_open"\} (\d+)$/m,
      ),
      "10",
    );

    await sleep(600);
    await served("o-back");
    t.equal(upstream.seen.length, 1, "one probe after resetAfter");
    await served("o-again");
    t.equal(upstream.seen.length, 2, "mirroring resumed");
    t.equal(
      await metric(/^turnout_shadow_total\{route="shadowed.get",result="match"\} (\d+)$/m),
      "2",
    );
  },
);
