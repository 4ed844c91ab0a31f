/**
 * What a shadow comparison holds against what: the answers the clients get
 * (a worker's bodiless error as the gateway's problem+json), within the
 * comparison cap on both sides, and what is kept or counted about it (the
 * request path without its query, the request body's size in bytes, payload
 * metrics for client traffic only).
 */
import type { ServerResponse } from "node:http";
import t, { type Test } from "tap";
import { ServiceError, startWorker } from "../../src/worker/index.js";
import { type SeenByLegacy, sendJson, startLegacyServer } from "../helpers/legacy-server.js";
import { usersCreateRoute, usersGetRoute, usersLegacyRoute } from "../helpers/route-yaml.js";
import { usersGetWorker } from "../helpers/routes-and-workers.js";
import { startStack, writeRoutes } from "../helpers/stack.js";

const TOKEN = "compared-answers-token";

/** What legacy answers; each test sets its own. */
let legacyAnswer: (request: SeenByLegacy, res: ServerResponse) => void = (_request, res) =>
  sendJson(res, 200, { id: "u1", region: "eu" });
const legacy = await startLegacyServer((request, res) => legacyAnswer(request, res));
t.teardown(() => legacy.close());

const ROUTES =
  usersGetRoute({ legacy: "users", cutover: "{ nats: 0, shadow: 0 }" }) +
  usersLegacyRoute({ cutover: "{ nats: 0, shadow: 0 }" }) +
  usersCreateRoute({ legacy: "users", shadowWrites: "true", cutover: "{ nats: 0, shadow: 0 }" });
const stack = await startStack(t, writeRoutes(ROUTES, `legacy:\n  users: ${legacy.url}\n`), {
  adminToken: TOKEN,
});
const url = (path: string) => `${stack.gateway.url}${path}`;

let creates = 0;
const createWorker = startWorker({
  nc: stack.nc,
  root: stack.root,
  subject: "svc.users.*.create",
  requestType: "users.v1.CreateUserRequest",
  responseType: "users.v1.User",
  handle() {
    creates++;
    return { id: "u1" };
  },
});
t.teardown(() => createWorker.stop());

/** A users.get worker answering with `handle` (users.get and users.legacy share its subject). */
async function workerFor(t: Test, handle: () => object): Promise<void> {
  const worker = usersGetWorker(stack.nc, stack.root, handle);
  t.teardown(() => worker.stop());
  await stack.nc.flush();
}

function shadow(t: Test, route: string, nats: number): void {
  stack.gateway.cutover.set(route, { nats, shadow: 100 });
  t.teardown(() => stack.gateway.cutover.set(route, { nats: 0, shadow: 0 }));
}

/** A counter's value, 0 when it has no sample yet. */
async function counter(name: string, route: string, label: string): Promise<number> {
  const text = await stack.gateway.metrics.registry.metrics();
  const line = new RegExp(`^${name}\\{route="${route}",${label}\\} (\\d+)$`, "m");
  return Number(line.exec(text)?.[1] ?? 0);
}

/** Sends one request and waits until its mirror is compared or skipped. */
async function mirrored(path: string, init?: RequestInit): Promise<Response> {
  const res = await fetch(url(path), init);
  await res.arrayBuffer();
  await waitUntil(() => stack.gateway.mirrors.inFlight === 0);
  return res;
}

interface Mismatch {
  path: string;
  diffs: Array<{ path: string }>;
}

/** users.get with NATS as primary and users.legacy with legacy as primary, for user u1 in `region`. */
function primaries(region: string) {
  return [
    ["users.get", `/v1/regions/${region}/users/u1`, 100],
    ["users.legacy", `/v1/old/${region}/users/u1`, 0],
  ] as const;
}

/** Mirrors `path` on `route` at `nats`: its answer, and how much the route's shadow `result` count grew. */
async function mirroredOnce(
  t: Test,
  [route, path, nats]: ReturnType<typeof primaries>[number],
  result: "match" | "mismatch",
): Promise<{ res: Response; counted: number }> {
  shadow(t, route, nats);
  const count = () => counter("turnout_shadow_total", route, `result="${result}"`);
  const before = await count();
  const res = await mirrored(path);
  return { res, counted: (await count()) - before };
}

async function mismatchesOf(route: string): Promise<Mismatch[]> {
  const res = await fetch(`${stack.gateway.adminUrl}/admin/routes/${route}/mismatches`, {
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  return ((await res.json()) as { mismatches: Mismatch[] }).mismatches;
}

async function waitUntil(condition: () => boolean, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > until) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const notFound = () => {
  throw new ServiceError(404, "user not found");
};

t.test(
  "a worker's bodiless error is compared as the problem+json the client gets: legacy's bare detail is a mismatch",
  async (t) => {
    await workerFor(t, notFound);
    legacyAnswer = (_request, res) => sendJson(res, 404, { detail: "user not found" });
    stack.gateway.mismatches.clear();
    for (const side of primaries("eu")) {
      const [route] = side;
      const { res, counted } = await mirroredOnce(t, side, "mismatch");
      t.equal(res.status, 404);
      t.equal(counted, 1, route);
      const [entry] = await mismatchesOf(route);
      const paths = (entry?.diffs ?? []).map((diff) => diff.path);
      t.same(paths.sort(), ["$.code", "$.route", "$.status", "$.title", "$.type"], route);
    }
  },
);

t.test(
  "a request the gateway refuses on the NATS side (a 400) is compared whichever side is primary",
  async (t) => {
    await workerFor(t, () => ({ id: "u1", region: "e.u" }));
    legacyAnswer = (_request, res) => sendJson(res, 200, { id: "u1", region: "e.u" });
    stack.gateway.mismatches.clear();
    for (const side of primaries("e.u")) {
      const [route, , nats] = side;
      const { res, counted } = await mirroredOnce(t, side, "mismatch");
      t.equal(res.status, nats === 100 ? 400 : 200, `${route}: the primary's answer`);
      t.equal(counted, 1, route);
      const [entry] = await mismatchesOf(route);
      t.ok(
        entry?.diffs.some((diff) => diff.path === "$status"),
        `${route}: the status differs (400 vs 200)`,
      );
    }
  },
);

t.test(
  "a worker's 204 or 205 is compared as the contentless answer the client gets: legacy's bodiless one matches",
  async (t) => {
    for (const status of [204, 205]) {
      const worker = usersGetWorker(
        stack.nc,
        stack.root,
        (_req: unknown, ctx: { httpStatus?: number }) => {
          ctx.httpStatus = status;
          return { id: "u1", region: "eu" };
        },
      );
      await stack.nc.flush();
      legacyAnswer = (_request, res) => {
        res.writeHead(status);
        res.end();
      };
      for (const side of primaries("eu")) {
        const { res, counted } = await mirroredOnce(t, side, "match");
        t.equal(res.status, status);
        t.equal(counted, 1, `${status} ${side[0]}`);
      }
      await worker.stop();
    }
  },
);

t.test(
  "an error answer's requestId never decides a comparison: legacy's problem+json with its own id matches",
  async (t) => {
    await workerFor(t, notFound);
    // Legacy prints the gateway's problem shape, with a request id of its own.
    legacyAnswer = (request, res) =>
      sendJson(res, 404, {
        type: "urn:turnout:error:TURNOUT_ERR_WORKER",
        title: "Worker error",
        status: 404,
        detail: "user not found",
        code: "TURNOUT_ERR_WORKER",
        requestId: "legacy-own-id",
        route: request.url.startsWith("/v1/old/") ? "users.legacy" : "users.get",
      });
    for (const side of primaries("eu")) {
      const { res, counted } = await mirroredOnce(t, side, "match");
      t.equal(res.status, 404);
      t.equal(counted, 1, side[0]);
    }
  },
);

t.test(
  "a NATS answer over the comparison cap is skipped as body_too_large, and legacy is not asked",
  async (t) => {
    await workerFor(t, () => ({ id: "u1", region: "eu", display_name: "x".repeat(300 * 1024) }));
    legacyAnswer = (_request, res) => sendJson(res, 200, { id: "u1", region: "eu" });
    shadow(t, "users.get", 100);
    const skipped = () =>
      counter("turnout_shadow_skipped_total", "users.get", 'reason="body_too_large"');
    const mismatches = () => counter("turnout_shadow_total", "users.get", 'result="mismatch"');
    const before = { skipped: await skipped(), mismatches: await mismatches() };
    const seen = legacy.seen.length;
    t.equal((await mirrored("/v1/regions/eu/users/u1")).status, 200);
    t.equal(await skipped(), before.skipped + 1);
    t.equal(legacy.seen.length, seen, "no legacy mirror was sent");
    t.equal(await mismatches(), before.mismatches, "not compared");
  },
);

t.test("a NATS mirror's answer over the comparison cap is skipped as body_too_large", async (t) => {
  await workerFor(t, () => ({ id: "u1", region: "eu", display_name: "x".repeat(300 * 1024) }));
  legacyAnswer = (_request, res) => sendJson(res, 200, { id: "u1", region: "eu" });
  shadow(t, "users.legacy", 0);
  const skipped = () =>
    counter("turnout_shadow_skipped_total", "users.legacy", 'reason="body_too_large"');
  const before = {
    skipped: await skipped(),
    mismatches: await counter("turnout_shadow_total", "users.legacy", 'result="mismatch"'),
  };
  t.equal((await mirrored("/v1/old/eu/users/u1")).status, 200);
  t.equal(await skipped(), before.skipped + 1);
  t.equal(
    await counter("turnout_shadow_total", "users.legacy", 'result="mismatch"'),
    before.mismatches,
    "not compared",
  );
});

t.test("the mismatch log keeps the request path without its query string", async (t) => {
  await workerFor(t, () => ({ id: "u7", region: "eu", email: "nats@example.com" }));
  legacyAnswer = (_request, res) =>
    sendJson(res, 200, { id: "u7", region: "eu", email: "legacy@example.com" });
  shadow(t, "users.get", 100);
  stack.gateway.mismatches.clear();
  await mirrored("/v1/regions/eu/users/u7?fields=email&api_key=SECRET123");
  const [entry] = await mismatchesOf("users.get");
  t.equal(entry?.path, "/v1/regions/eu/users/u7");
  t.notMatch(JSON.stringify(await mismatchesOf("users.get")), /SECRET123/);
  t.equal(
    legacy.seen.at(-1)?.url,
    "/v1/regions/eu/users/u7?fields=email&api_key=SECRET123",
    "the mirror itself still carries the query",
  );
});

t.test(
  "a request body over the cap in UTF-8 bytes is not mirrored, though shorter in characters",
  async (t) => {
    legacyAnswer = (_request, res) => sendJson(res, 201, { id: "u1" });
    shadow(t, "users.create", 0);
    // 150,000 two-byte characters: 300,000 bytes, over the 256 KiB cap, in fewer characters.
    const body = JSON.stringify({ id: "u1", displayName: "é".repeat(150_000) });
    t.ok(body.length < 256 * 1024 && Buffer.byteLength(body) > 256 * 1024);
    const skipped = () =>
      counter("turnout_shadow_skipped_total", "users.create", 'reason="body_too_large"');
    const before = { skipped: await skipped(), creates };
    const res = await mirrored("/v1/regions/eu/users", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    });
    t.equal(res.status, 201, "legacy served it");
    t.equal(await skipped(), before.skipped + 1);
    t.equal(creates, before.creates, "no NATS mirror was sent");
  },
);

t.test("mirrored NATS requests are not counted in turnout_payload_bytes", async (t) => {
  await workerFor(t, () => ({ id: "u1", region: "eu" }));
  legacyAnswer = (_request, res) => sendJson(res, 200, { id: "u1", region: "eu" });
  shadow(t, "users.legacy", 0);
  const payloads = async () => {
    const text = await stack.gateway.metrics.registry.metrics();
    const counts = text.match(/^turnout_payload_bytes_count\{route="users.legacy",.*$/gm) ?? [];
    return counts.map((line) => Number(line.split(" ").at(-1))).reduce((a, b) => a + b, 0);
  };
  const before = await payloads();
  const matches = await counter("turnout_shadow_total", "users.legacy", 'result="match"');
  t.equal((await mirrored("/v1/old/eu/users/u1")).status, 200);
  t.equal(
    await counter("turnout_shadow_total", "users.legacy", 'result="match"'),
    matches + 1,
    "the NATS mirror ran",
  );
  t.equal(await payloads(), before, "and was not counted as client payload");
});
