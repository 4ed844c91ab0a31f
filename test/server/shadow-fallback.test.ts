/**
 * Shadowing a route that NATS serves, when NATS fails or answers an error: the
 * legacy mirror starts only once the NATS outcome is known, so a fallback to
 * legacy runs the request there once, and a worker's error answer is compared.
 */
import t, { type Test } from "tap";
import { sendJson, startLegacyServer } from "../helpers/legacy-server.js";
import { usersCreateRoute, usersGetRoute } from "../helpers/route-yaml.js";
import { usersGetWorker } from "../helpers/routes-and-workers.js";
import { startStack, writeRoutes } from "../helpers/stack.js";

const legacy = await startLegacyServer((request, res) => {
  if (request.method === "POST") sendJson(res, 201, { created: true });
  else sendJson(res, 200, { id: "u-1", region: "eu" });
});
t.teardown(() => legacy.close());

const ROUTES =
  usersCreateRoute({
    legacy: "users",
    shadowWrites: "true",
    cutover: "{ nats: 100, shadow: 100 }",
  }) + usersGetRoute({ legacy: "users", cutover: "{ nats: 100, shadow: 100 }" });
const stack = await startStack(t, writeRoutes(ROUTES, `legacy:\n  users: ${legacy.url}\n`));
const url = (path: string) => `${stack.gateway.url}${path}`;

/** A users.get worker answering with `handle`, for the test it is started in. */
async function workerFor(t: Test, handle: () => object): Promise<void> {
  const worker = usersGetWorker(stack.nc, stack.root, handle, () => {});
  t.teardown(() => worker.stop());
  await stack.nc.flush();
}

async function metrics(): Promise<string> {
  return (await fetch(`${stack.gateway.adminUrl}/metrics`)).text();
}

t.test(
  "a write that falls back to legacy runs there once, not once more as a mirror",
  async (t) => {
    const before = legacy.seen.length;
    const res = await fetch(url("/v1/regions/eu/users"), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ id: "u-9" }),
    });
    t.equal(res.status, 201, "legacy served the fallback (no worker listens)");
    await res.arrayBuffer();
    await new Promise((resolve) => setTimeout(resolve, 100)); // a mirror would have landed by now
    t.equal(legacy.seen.length - before, 1, "legacy received the POST once");
    t.match(
      await metrics(),
      /turnout_shadow_skipped_total\{route="users.create",reason="primary_failed"\} 1/,
    );
  },
);

t.test(
  "a worker's error answer is compared with legacy's answer: a mismatch on the status",
  async (t) => {
    await workerFor(t, () => {
      throw new Error("boom");
    });
    const res = await fetch(url("/v1/regions/eu/users/u-1"));
    t.equal(res.status, 500, "the worker's 500 is the client's answer (no fallback)");
    await res.arrayBuffer();
    let text = "";
    for (let i = 0; i < 50 && !/users.get",result="mismatch"\} 1/.test(text); i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      text = await metrics();
    }
    t.match(text, /turnout_shadow_total\{route="users.get",result="mismatch"\} 1/);
  },
);

t.test("HEAD requests are not mirrored: their answers have no body to compare", async (t) => {
  await workerFor(t, () => ({ id: "u-1", region: "eu" }));
  const before = legacy.seen.length;
  const head = await fetch(url("/v1/regions/eu/users/u-1"), { method: "HEAD" });
  t.equal(head.status, 200, "the worker served it");
  await head.arrayBuffer();
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.equal(legacy.seen.length, before, "legacy got no mirrored HEAD");
  const get = await fetch(url("/v1/regions/eu/users/u-1"));
  await get.arrayBuffer();
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.equal(legacy.seen.length, before + 1, "a GET is mirrored");
});
