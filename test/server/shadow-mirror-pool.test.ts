/**
 * Legacy mirrors go through a pool of their own per upstream: a slow
 * upstream holding every mirror never makes a legacy-served client request
 * queue behind them (it would time out, and count against its breaker).
 */
import type { ServerResponse } from "node:http";
import t from "tap";
import { sendJson, startLegacyServer } from "../helpers/legacy-server.js";
import { usersGetRoute, usersLegacyRoute } from "../helpers/route-yaml.js";
import { usersGetWorker } from "../helpers/routes-and-workers.js";
import { waitUntil } from "../helpers/serve-process.js";
import { startStack, writeRoutes } from "../helpers/stack.js";

/** Mirrors of users.get that legacy holds until the test lets them go. */
const held: ServerResponse[] = [];
let holding = true;
const answer = (res: ServerResponse) => sendJson(res, 200, { id: "u1", region: "eu" });
const legacy = await startLegacyServer((request, res) => {
  if (holding && request.url.startsWith("/v1/regions/")) held.push(res);
  else answer(res);
});
t.teardown(() => legacy.close());

const ROUTES =
  usersGetRoute({ legacy: "users", timeout: "5s", cutover: "{ nats: 100, shadow: 100 }" }) +
  usersLegacyRoute({ timeout: "1s", cutover: "{ nats: 0, shadow: 0 }" });
const stack = await startStack(t, writeRoutes(ROUTES, `legacy:\n  users: ${legacy.url}\n`));
const worker = usersGetWorker(stack.nc, stack.root, () => ({ id: "u1", region: "eu" }));
t.teardown(() => worker.stop());
await stack.nc.flush();

/** Lets every held mirror (and any still to come) answer, so the drain has nothing to wait for. */
function release(): void {
  holding = false;
  for (const res of held.splice(0)) answer(res);
}

t.test(
  "legacy mirrors held by a slow upstream never make a legacy-served client request wait",
  async (t) => {
    t.teardown(release);
    // More than the upstream's 64 client sockets: in a shared pool, these mirrors took them all.
    const served = await Promise.all(
      Array.from({ length: 70 }, (_, i) => fetch(`${stack.gateway.url}/v1/regions/eu/users/u${i}`)),
    );
    t.same(
      served.map((res) => res.status),
      served.map(() => 200),
      "NATS served every client",
    );
    await waitUntil(() => held.length >= 16, 5000);

    const res = await fetch(`${stack.gateway.url}/v1/old/eu/users/u1`);
    t.equal(res.status, 200, "the legacy-served request was answered while the mirrors are held");
    t.same(await res.json(), { id: "u1", region: "eu" });
  },
);

t.test(
  "mirrors beyond the upstream's free mirror sockets are skipped as in_flight_cap",
  async (t) => {
    await waitUntil(() => stack.gateway.mirrors.inFlight === 0, 5000);
    holding = true;
    t.teardown(release);
    const metrics = stack.gateway.metrics.registry;
    const skipped = async () => {
      const line = /turnout_shadow_skipped_total\{route="users.get",reason="in_flight_cap"\} (\d+)/;
      return Number(line.exec(await metrics.metrics())?.[1] ?? 0);
    };
    const before = await skipped();
    await Promise.all(
      Array.from({ length: 40 }, (_, i) => fetch(`${stack.gateway.url}/v1/regions/eu/users/v${i}`)),
    );
    const sent = stack.gateway.mirrors.inFlight;
    t.ok(sent > 0 && sent < 40, `${sent} of 40 mirrors sent, one per free mirror socket`);
    t.equal(await skipped(), before + 40 - sent, "the rest counted as skipped");
  },
);
