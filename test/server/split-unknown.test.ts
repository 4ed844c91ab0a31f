/**
 * While the live cutover state loads, a route with two sides is refused (503,
 * Retry-After) instead of split on routes.yaml's values, which the KV may have
 * replaced: a user must not flip sides while a replica starts. Routes with one
 * side, and requests an operator forces to a side, are served meanwhile.
 */
import { connect } from "@nats-io/transport-node";
import t, { type Test } from "tap";
import { loadConfigAndProtos } from "../../src/config/load.js";
import { startNatsServer } from "../../src/devtools/nats-server.js";
import { sendJson, startLegacyServer } from "../helpers/legacy-server.js";
import { ordersGetRoute, usersGetRoute } from "../helpers/route-yaml.js";
import { startLoopbackGateway, writeRoutes } from "../helpers/stack.js";

const TOKEN = "split-unknown-token";
const SPLIT_PATH = "/v1/regions/eu/users/7";

async function startGateway(t: Test, options: { jetstream: boolean; jetstreamSilent: boolean }) {
  const server = await startNatsServer({ jetstream: options.jetstream });
  t.teardown(() => server.stop());
  if (options.jetstreamSilent) {
    // A JetStream that takes requests and never answers (a cluster without quorum).
    const nc = await connect({ servers: server.url });
    t.teardown(() => nc.close());
    nc.subscribe("$JS.API.>", { callback: () => {} });
    await nc.flush();
  }
  const legacy = await startLegacyServer((_request, res) => sendJson(res, 200, { id: "7" }));
  t.teardown(() => legacy.close());
  const routes =
    usersGetRoute({ legacy: "users", cutover: "{ nats: 0, shadow: 0 }" }) + ordersGetRoute();
  const file = writeRoutes(routes, `legacy:\n  users: ${legacy.url}\n`);
  const { config, root } = loadConfigAndProtos(file, { natsUrl: server.url });
  const gateway = await startLoopbackGateway({ config, root, adminToken: TOKEN, logger: false });
  t.teardown(() => gateway.close());
  await gateway.connected;
  return { gateway, legacy };
}

t.test("live state not loaded: a two-sided route answers 503 and reaches no backend", async (t) => {
  const { gateway, legacy } = await startGateway(t, { jetstream: false, jetstreamSilent: true });
  const res = await fetch(gateway.url + SPLIT_PATH, { headers: { "x-user-id": "u1" } });
  const problem = (await res.json()) as { code: string; detail: string };
  t.equal(res.status, 503);
  t.match(res.headers.get("content-type"), /^application\/problem\+json/);
  t.equal(res.headers.get("retry-after"), "1");
  t.equal(problem.code, "TURNOUT_ERR_CUTOVER_UNAVAILABLE");
  t.match(problem.detail, /users\.get's split/);
  t.equal(legacy.seen.length, 0, "legacy was not called");
  const scrape = await (await fetch(`${gateway.adminUrl}/metrics`)).text();
  t.match(scrape, /turnout_requests_total\{route="users.get",backend="gateway",code="503"\} 1/);
  const readyz = await fetch(`${gateway.adminUrl}/readyz`);
  t.equal(readyz.status, 503);
  t.match(await readyz.text(), /live cutover state not loaded yet/);
});

t.test("live state not loaded: a side forced by an operator is still served", async (t) => {
  const { gateway, legacy } = await startGateway(t, { jetstream: false, jetstreamSilent: true });
  const res = await fetch(gateway.url + SPLIT_PATH, {
    headers: { "turnout-backend": "legacy", "turnout-token": TOKEN },
  });
  t.equal(res.status, 200);
  t.same(await res.json(), { id: "7" });
  t.equal(legacy.seen.length, 1);
});

t.test("live state not loaded: a route with only NATS goes to NATS", async (t) => {
  const { gateway } = await startGateway(t, { jetstream: false, jetstreamSilent: true });
  const res = await fetch(`${gateway.url}/v1/orders/o-1`);
  const problem = (await res.json()) as { code: string };
  // No worker listens: NATS was asked, and said so.
  t.equal(res.status, 503);
  t.equal(problem.code, "TURNOUT_ERR_NO_RESPONDERS");
});

t.test("no JetStream: the file's split is final, the route is served", async (t) => {
  const { gateway, legacy } = await startGateway(t, { jetstream: false, jetstreamSilent: false });
  await gateway.cutoverStore.settled;
  t.equal(gateway.cutoverStore.mode, "file");
  const res = await fetch(gateway.url + SPLIT_PATH, { headers: { "x-user-id": "u1" } });
  t.equal(res.status, 200);
  t.equal(legacy.seen.length, 1, "served by legacy, as nats: 0 says");
});

t.test("live state loaded: the route is split again", async (t) => {
  const { gateway, legacy } = await startGateway(t, { jetstream: true, jetstreamSilent: false });
  await gateway.cutoverStore.settled;
  t.equal(gateway.cutoverStore.mode, "live");
  const res = await fetch(gateway.url + SPLIT_PATH, { headers: { "x-user-id": "u1" } });
  t.equal(res.status, 200);
  t.equal(legacy.seen.length, 1, "served by legacy, as the KV (seeded with nats: 0) says");
});
