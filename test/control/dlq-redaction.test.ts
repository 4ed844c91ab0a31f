/**
 * A route may forward credentials to its workers (Authorization, cookies).
 * Its dead letters keep them, so a replay sends what the worker needs, but
 * the admin API never shows their values.
 */
import t from "tap";
import { listDeadLetters } from "../../src/backends/nats/dead-letters.js";
import { call, TOKEN, within } from "../helpers/cutover-fixture.js";
import { ordersGetRoute } from "../helpers/route-yaml.js";
import { startPaidOrdersWorker } from "../helpers/routes-and-workers.js";
import { startStack, writeRoutes } from "../helpers/stack.js";

const routes = writeRoutes(
  ordersGetRoute({ headers: "[authorization, x-tenant]", cutover: "{ nats: 100, shadow: 0 }" }),
);
const stack = await startStack(t, routes, { jetstream: true, adminToken: TOKEN });
const { gateway } = stack;

t.test(
  "the admin API shows a letter's credential headers as [redacted]; replay sends them",
  async (t) => {
    const failed = await fetch(`${gateway.url}/v1/orders/o-9`, {
      headers: { authorization: "Bearer client-secret", "x-tenant": "acme" },
    });
    t.equal(failed.status, 503, "no worker: kept as a dead letter");
    t.ok(await within(5000, async () => (await listDeadLetters(stack.nc)).length === 1));

    const listed = await call(`${gateway.adminUrl}/admin/dlq`);
    t.equal(listed.status, 200);
    const [letter] = (listed.body as { deadLetters: Array<{ headers: Record<string, string[]> }> })
      .deadLetters;
    t.same(letter?.headers.authorization, ["[redacted]"], "the credential is not shown");
    t.same(letter?.headers["x-tenant"], ["acme"], "other headers are shown as they are");
    t.notMatch(JSON.stringify(listed.body), /client-secret/);

    // A worker is back: the replay carries the real value.
    const { seen, stop } = startPaidOrdersWorker(stack.nc, stack.root);
    t.teardown(stop);
    await stack.nc.flush();
    const replayed = await call(`${gateway.adminUrl}/admin/dlq/replay`, {
      method: "POST",
      body: JSON.stringify({}),
    });
    t.match(replayed.body, { outcomes: [{ result: "ok" }] });
    t.equal(seen[0]?.headers?.get("authorization"), "Bearer client-secret");
  },
);
